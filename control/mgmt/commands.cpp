#include "control/mgmt/commands.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <tuple>

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

bool Registry::match(const Cmd& c, const std::vector<std::string>& words, Args* out,
                     std::vector<int>* rank_out) const {
    std::function<bool(size_t, size_t, Args&, std::vector<int>&)> rec = [&](size_t ti, size_t wi, Args& a,
                                                                            std::vector<int>& rank) -> bool {
        if (ti == c.toks.size()) return wi == words.size();
        const Tok& t = c.toks[ti];
        if (t.group_start) {
            // Either skip the whole optional group...
            size_t after = ti;
            while (after < c.toks.size() && c.toks[after].group == t.group) after++;
            Args skip = a;
            std::vector<int> r2 = rank;
            if (rec(after, wi, skip, r2)) {
                a = skip;
                rank = r2;
                return true;
            }
        }
        // ...or match this token.
        if (wi == words.size()) return false;
        const std::string& w = words[wi];
        if (t.var) {
            Args next = a;
            next.vars[t.word] = w;
            std::vector<int> r2 = rank;
            r2.push_back(1);
            if (rec(ti + 1, wi + 1, next, r2)) {
                a = next;
                rank = r2;
                return true;
            }
            return false;
        }
        if (w.empty() || t.word.compare(0, w.size(), w) != 0) return false;
        rank.push_back(w == t.word ? 2 : 0);
        return rec(ti + 1, wi + 1, a, rank);
    };
    Args a;
    std::vector<int> rank;
    if (!rec(0, 0, a, rank)) return false;
    if (out) *out = a;
    if (rank_out) *rank_out = rank;
    return true;
}

void Registry::states(const Cmd& c, const std::vector<std::string>& words, std::vector<size_t>* out) const {
    std::function<void(size_t, size_t)> rec = [&](size_t ti, size_t wi) {
        if (ti < c.toks.size() && c.toks[ti].group_start) {
            size_t after = ti;
            while (after < c.toks.size() && c.toks[after].group == c.toks[ti].group) after++;
            rec(after, wi);
        }
        if (wi == words.size()) {
            out->push_back(ti);
            return;
        }
        if (ti == c.toks.size()) return;
        const Tok& t = c.toks[ti];
        const std::string& w = words[wi];
        if (t.var || (!w.empty() && t.word.compare(0, w.size(), w) == 0)) rec(ti + 1, wi + 1);
    };
    rec(0, 0);
}

Result Registry::run(const std::vector<std::string>& words, bool json) const {
    if (words.empty()) return Result::error("% Empty command");
    std::vector<std::tuple<const Cmd*, Args, std::vector<int>>> hits;
    for (auto& c : cmds_) {
        Args a;
        std::vector<int> rank;
        if (match(c, words, &a, &rank)) hits.emplace_back(&c, a, rank);
    }
    if (hits.empty()) {
        std::string typed;
        for (auto& w : words) typed += (typed.empty() ? "" : " ") + w;
        return Result::error("% Unknown command: " + typed + " (try 'help')");
    }
    // Word by word, keep only the best-ranked candidates.
    for (size_t i = 0; i < words.size() && hits.size() > 1; i++) {
        int best = -1;
        for (auto& h : hits) best = std::max(best, std::get<2>(h)[i]);
        hits.erase(std::remove_if(hits.begin(), hits.end(), [&](auto& h) { return std::get<2>(h)[i] < best; }),
                   hits.end());
    }
    if (hits.size() > 1) {
        std::string s = "% Ambiguous command; it could be:";
        for (auto& h : hits) s += "\n  " + std::get<0>(h)->pattern;
        return Result::error(s);
    }
    Args a = std::get<1>(hits.front());
    a.words = words;
    a.json = json;
    return std::get<0>(hits.front())->handler(a);
}

std::vector<std::pair<std::string, std::string>> Registry::next_words(
    const std::vector<std::string>& words) const {
    std::map<std::string, std::string> out;
    for (auto& c : cmds_) {
        std::vector<size_t> st;
        states(c, words, &st);
        for (size_t ti : st) {
            if (ti == c.toks.size()) {
                out.emplace("<cr>", c.help);
                continue;
            }
            const Tok& t = c.toks[ti];
            out.emplace(t.word, t.var ? "a value" : c.help);
            auto v = t.var ? values_.find(t.word) : values_.end();
            if (v != values_.end())
                for (auto& val : v->second()) out.emplace(val, t.word);
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
