#include "src/common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace nimbus {

bool read_file(const std::string& path, std::string* out) {
    std::ifstream f(path);
    if (!f) return false;
    std::stringstream ss;
    ss << f.rdbuf();
    *out = ss.str();
    return true;
}

bool write_file_atomic(const std::string& path, const std::string& data, std::string* err) {
    std::string tmp = path + ".tmp";
    struct stat st {};
    mode_t mode = stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0600;
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        *err = fmt::format("{}: {}", tmp, strerror(errno));
        return false;
    }
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n <= 0) {
            *err = fmt::format("{}: {}", tmp, strerror(errno));
            ::close(fd);
            unlink(tmp.c_str());
            return false;
        }
        off += size_t(n);
    }
    fsync(fd);
    ::close(fd);
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        *err = fmt::format("rename {} -> {}: {}", tmp, path, strerror(errno));
        unlink(tmp.c_str());
        return false;
    }
    return true;
}

std::string iso_time() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

}  // namespace nimbus
