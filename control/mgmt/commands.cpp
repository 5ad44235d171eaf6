#include "control/mgmt/commands.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

namespace nimbus::mgmt {

namespace {

bool is_var(const std::string& w) {
    return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
        return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
               c == '_';
    });
}

}  // namespace

void Registry::add(const std::string& pattern, const std::string& help, Handler h) {
    Cmd c;
    c.pattern = pattern;
    c.help = help;
    c.handler = std::move(h);
    int group = -1, ngroups = 0;
    size_t i = 0;
    while (i < pattern.size()) {
        while (i < pattern.size() && pattern[i] == ' ') i++;
        size_t j = i;
        while (j < pattern.size() && pattern[j] != ' ') j++;
        if (j == i) break;
        std::string w = pattern.substr(i, j - i);
        bool start = false;
        if (w.front() == '[') {
            group = ngroups++;
            start = true;
            w.erase(0, 1);
        }
        bool end = !w.empty() && w.back() == ']';
        if (end) w.pop_back();
        c.toks.push_back(Tok{w, is_var(w), group, start});
        if (end) group = -1;
        i = j;
    }
    cmds_.push_back(std::move(c));
}

bool Registry::match(const Cmd& c, const std::vector<std::string>& words, bool exact, Args* out) const {
    std::function<bool(size_t, size_t, Args&)> rec = [&](size_t ti, size_t wi, Args& a) -> bool {
        if (ti == c.toks.size()) return wi == words.size();
        const Tok& t = c.toks[ti];
        if (t.group_start) {
            // Either skip the whole optional group...
            size_t after = ti;
            while (after < c.toks.size() && c.toks[after].group == t.group) after++;
            Args skip = a;
            if (rec(after, wi, skip)) {
                a = skip;
                return true;
            }
        }
        // ...or match this token.
        if (wi == words.size()) return false;
        const std::string& w = words[wi];
        if (t.var) {
            Args next = a;
            next.vars[t.word] = w;
            if (rec(ti + 1, wi + 1, next)) {
                a = next;
                return true;
            }
            return false;
        }
        bool ok = exact ? w == t.word : (!w.empty() && t.word.compare(0, w.size(), w) == 0);
        return ok && rec(ti + 1, wi + 1, a);
    };
    Args a;
    if (!rec(0, 0, a)) return false;
    if (out) *out = a;
    return true;
}

Result Registry::run(const std::vector<std::string>& words, bool json) const {
    if (words.empty()) return Result::error("% Empty command");
    for (bool exact : {true, false}) {
        std::vector<std::pair<const Cmd*, Args>> hits;
        for (auto& c : cmds_) {
            Args a;
            if (match(c, words, exact, &a)) hits.emplace_back(&c, a);
        }
        if (hits.size() > 1 && !exact) {
            std::string s = "% Ambiguous command; it could be:";
            for (auto& h : hits) s += "\n  " + h.first->pattern;
            return Result::error(s);
        }
        if (!hits.empty()) {
            Args a = hits.front().second;
            a.words = words;
            a.json = json;
            return hits.front().first->handler(a);
        }
    }
    std::string typed;
    for (auto& w : words) typed += (typed.empty() ? "" : " ") + w;
    return Result::error("% Unknown command: " + typed + " (try 'help')");
}

std::vector<std::pair<std::string, std::string>> Registry::next_words(
    const std::vector<std::string>& words) const {
    std::set<std::pair<std::string, std::string>> out;
    for (auto& c : cmds_) {
        // Try every prefix length of the pattern: a placeholder or literal at
        // position words.size() that can follow an exact/abbreviated match.
        for (size_t cut = 0; cut <= c.toks.size(); cut++) {
            Cmd head;
            head.toks.assign(c.toks.begin(), c.toks.begin() + long(cut));
            if (!match(head, words, false, nullptr)) continue;
            if (cut < c.toks.size()) {
                // The token at `cut`, plus the first token after each group
                // that may be skipped from there.
                size_t t = cut;
                while (t < c.toks.size()) {
                    const Tok& tk = c.toks[t];
                    out.emplace(tk.var ? tk.word : tk.word, tk.var ? "value" : c.help);
                    if (!tk.group_start) break;
                    size_t after = t;
                    while (after < c.toks.size() && c.toks[after].group == tk.group) after++;
                    t = after;
                }
                if (t == c.toks.size()) out.emplace("<cr>", c.help);
            } else {
                out.emplace("<cr>", c.help);
            }
        }
    }
    return {out.begin(), out.end()};
}

std::vector<std::pair<std::string, std::string>> Registry::list() const {
    std::vector<std::pair<std::string, std::string>> v;
    for (auto& c : cmds_) v.emplace_back(c.pattern, c.help);
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace nimbus::mgmt
