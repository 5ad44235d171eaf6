// Giving freed memory back to the system. glibc keeps what a thread frees
// in that thread's arena, and each short-lived helper thread (a config
// apply, a big listing's writer) may get an arena of its own, so their
// transient memory stayed resident long after it was freed (cli.sh rss_mib).
#pragma once

namespace nimbus {

// malloc_trim over every arena; returns the MiB the resident set shrank by
// (0 if it did not) and logs it with how long it took, `after` saying what
// had freed it. Locks each arena in turn while trimming it: call it from a
// helper thread after a big job, never from a hot path.
long give_back_memory(const char* after);

}  // namespace nimbus
