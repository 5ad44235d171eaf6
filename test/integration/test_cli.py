"""The CLI: one-shot commands with JSON and filters, and the interactive
shell (libedit) driven through tmux: tab completion of commands and of port
names, '?' help, running a command."""
import json
import os
import shutil

import pytest

from nimbuslab import NIMBUS, run, wait_until

CFG = """node: { name: "@NODE@" }
dataplane: { eal: [--no-huge, -m, "512"] }
mgmt: { socket: "@SOCK@" }
vrfs: [ { name: corp } ]
ports:
  - { name: lan0, device: "net_af_packet0,iface=pa", addresses: [10.1.0.1/24] }
  - { name: wan0, device: "net_af_packet1,iface=pb", vrf: corp, addresses: [192.0.2.1/24] }
"""


def box(lab):
    r, a = lab.ns("r"), lab.ns("a")
    lab.veth(a, "a0", r, "pa")
    lab.veth(a, "a1", r, "pb")
    return lab.nimbusd(r, "r", CFG).start()


def test_one_shot_commands(lab):
    d = box(lab)
    assert [i["name"] for i in d.cli("show", "interfaces")] == ["lan0", "wan0"]
    assert d.cli("show", "interfaces", "wan0")[0]["vrf"] == "corp"
    # vtysh habits: abbreviations, -c, filters, json as a pipe.
    out = run([NIMBUS, "-s", d.sock, "-c", "sh ip ro vrf corp"]).stdout
    assert "192.0.2.0/24" in out and "10.1.0.0/24" not in out
    out = run([NIMBUS, "-s", d.sock, "show", "ip", "route", "|", "include", "is", "local"]).stdout
    assert out.strip().splitlines() == ["L>* 10.1.0.1/32 [0] is local", "L>* 10.1.0.255/32 [0] is local"]
    data = json.loads(run([NIMBUS, "-s", d.sock, "show", "version", "|", "json"]).stdout)
    assert data["node"] == d.node
    bad = run([NIMBUS, "-s", d.sock, "show", "bogus"], check=False)
    assert bad.returncode == 1 and "% Unknown command: show bogus" in bad.stderr
    bad = run([NIMBUS, "-s", d.sock, "show", "interfaces", "nope"], check=False)
    assert bad.returncode == 1 and "% No such interface: nope" in bad.stderr
    gone = run([NIMBUS, "-s", d.sock + ".missing", "show", "version"], check=False)
    assert gone.returncode == 3 and "cannot reach nimbusd" in gone.stderr


def test_interactive_shell_completion(lab):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    d = box(lab)
    sess = lab.prefix
    run(["tmux", "new-session", "-d", "-s", sess, "-x", "160", "-y", "50",
         f"HOME={lab.dir} {NIMBUS} -s {d.sock}"])
    try:
        def screen():
            return run(["tmux", "capture-pane", "-p", "-t", sess]).stdout

        def keys(*k):
            run(["tmux", "send-keys", "-t", sess] + list(k))

        # (capture-pane drops trailing blanks: look for the words, then type on)
        wait_until(lambda: f"{d.node}>" in screen(), 10, "the shell prompt")
        keys("sh", "Tab")
        wait_until(lambda: f"{d.node}> show" in screen(), 10, "'sh' to complete to 'show'")
        keys("int", "Tab")
        wait_until(lambda: "show interfaces" in screen(), 10, "'int' to complete to 'interfaces'")
        keys("w", "Tab")
        wait_until(lambda: "show interfaces wan0" in screen(), 10, "a port name to complete")
        keys("Enter")
        wait_until(lambda: "192.0.2.1/24" in screen(), 10, "the command's output")
        keys("show ip route ?")
        wait_until(lambda: "vrf" in screen() and "<cr>" in screen(), 10, "'?' to list what can follow")
        keys("C-u", "exit", "Enter")
        wait_until(lambda: run(["tmux", "has-session", "-t", sess], check=False).returncode != 0, 10,
                   "the shell to exit")
        assert os.path.exists(os.path.join(lab.dir, ".nimbus_history"))
    finally:
        run(["tmux", "kill-session", "-t", sess], check=False)


def test_non_interactive_shell_reads_commands_from_stdin(lab):
    d = box(lab)
    p = run([NIMBUS, "-s", d.sock], input="show version\n\nshow interfaces lan0\nexit\nshow counters\n")
    assert d.node in p.stdout and "10.1.0.1/24" in p.stdout and "Punt class" not in p.stdout
