// The command registry. Each feature registers its `show`/`clear` commands
// next to its own code; the CLI socket (and later the HTTPS API and the
// interactive shell) dispatch through here, so all front ends run the very
// same handlers.
//
// Patterns are vtysh-like: literal words, UPPERCASE placeholders that take
// one word, and [optional groups]. Literal words may be abbreviated to any
// unique prefix ("sh ip ro").
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nimbus::mgmt {

struct Args {
    std::map<std::string, std::string> vars;  // placeholder -> word
    std::vector<std::string> words;            // the command as typed
    bool json = false;
    bool has(const std::string& k) const { return vars.count(k) > 0; }
    std::string get(const std::string& k, const std::string& dflt = "") const {
        auto it = vars.find(k);
        return it == vars.end() ? dflt : it->second;
    }
};

struct Result {
    int status = 0;  // 0 ok, 1 error (message in text)
    std::string text;
    nlohmann::json data;
    bool json = false;  // the caller asked for JSON (-j or "| json")
    // If set, `data` is built by whoever sends the reply, on its own thread
    // (the CLI's writer, the API's HTTP thread): at 100,000 tunnels building
    // a listing's JSON takes seconds the control thread (VRRP, IKE, ZAPI)
    // does not have. It must use only what it captured (copies taken by the
    // handler), never live control state.
    std::function<nlohmann::json()> make_data;
    std::function<std::string()> make_text;  // the same for `text`
    // If set, the whole result (status included) is built by whoever sends
    // the reply, on its own thread, which may wait for the control thread
    // (Bridge): `config apply` parses and plans there and has the control
    // thread only run the steps. Never run on the control thread itself.
    std::function<Result()> make;
    static Result error(std::string msg) { return Result{1, std::move(msg), nullptr, false, nullptr, nullptr, nullptr}; }
    bool deferred() const { return make || make_data || make_text; }
    // Everything built now (status, text, data) if any of it was deferred.
    Result& built() {
        if (make) {
            auto m = std::move(make);
            bool j = json;
            *this = m();
            json = j;
        }
        built_text();
        built_data();
        return *this;
    }
    std::string& built_text() {
        if (make_text) {
            text = make_text();
            make_text = nullptr;
        }
        return text;
    }
    // `data`, built now if it was deferred.
    nlohmann::json& built_data() {
        if (make_data) {
            data = make_data();
            make_data = nullptr;
        }
        return data;
    }
};

using Handler = std::function<Result(const Args&)>;

class Registry {
public:
    void add(const std::string& pattern, const std::string& help, Handler h);
    // Values a placeholder can take (ports for PORT, VRFs for VRF ...), for
    // completion in the interactive shell.
    void values(const std::string& placeholder, std::function<std::vector<std::string>()> f) {
        values_[placeholder] = std::move(f);
    }
    Result run(const std::vector<std::string>& words, bool json) const;
    // What may follow `words` (for completion and `?`).
    std::vector<std::pair<std::string, std::string>> next_words(const std::vector<std::string>& words) const;
    std::vector<std::pair<std::string, std::string>> list() const;  // pattern, help

private:
    struct Tok {
        std::string word;   // literal, or placeholder name
        bool var = false;
        int group = -1;     // index of the optional group it belongs to
        bool group_start = false;
    };
    struct Cmd {
        std::string pattern, help;
        std::vector<Tok> toks;
        Handler handler;
    };
    // Matches words against cmd; literal words may be abbreviated. `rank`
    // gets, per word, 2 for a literal typed in full, 1 for a placeholder, 0
    // for an abbreviation: the best-ranked command wins ("ip" beats "ipv6").
    bool match(const Cmd& c, const std::vector<std::string>& words, Args* out, std::vector<int>* rank) const;
    // Token positions of c reachable after consuming all of words.
    void states(const Cmd& c, const std::vector<std::string>& words, std::vector<size_t>* out) const;
    std::vector<Cmd> cmds_;
    std::map<std::string, std::function<std::vector<std::string>()>> values_;
};

}  // namespace nimbus::mgmt
