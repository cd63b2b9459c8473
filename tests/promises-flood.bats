#!/usr/bin/env bats
# tests/promises-flood.bats: workers always get in (issue 9, point 6).  Connections that have not
# authenticated have their own cap (--max-unauth; past it the oldest is dropped) and never take the
# places of authenticated ones (--max-conns counts those only); refusals, drops and failed
# handshakes are logged as one summary line per interval, not one line each.
#
# The floods are a small python3 program (peer, below), bounded in connections and in time.  No
# test asserts that anything was fast: each waits for an event with a deadline of many seconds.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
}

# peer MODE ARG...: the hostile peer, in python3 (see PEER_PY).  Every socket operation times out
# after 10 s, and the whole run ends after at most 60 s.
peer() {
	timeout -k 5 90 python3 -c "$PEER_PY" "$@"
}

# shellcheck disable=SC2016,SC2089 # python, not shell
PEER_PY='
import os, secrets, socket, sys, time

def connect(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    return s

def readline(s):
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        buf += b
    return buf.decode(errors="replace").rstrip("\n")

def note(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.rename(path + ".tmp", path)

mode, addr = sys.argv[1], sys.argv[2]
end = time.monotonic() + 60
if mode == "idle":
    # idle ADDR N READY: open N connections, never send a byte, hold them
    n, ready = int(sys.argv[3]), sys.argv[4]
    socks = []
    for i in range(n):
        try:
            socks.append(connect(addr))
        except OSError as e:
            print("connection %d: %s" % (i, e), file=sys.stderr)
            break
    note(ready, str(len(socks)))
    while time.monotonic() < end:
        time.sleep(1)
elif mode == "badhello":
    # badhello ADDR N PROGRESS: N handshakes with a wrong token (every fourth one sends a
    # request instead of HELLO), 20 at a time; PROGRESS gets the count done so far
    n, progress = int(sys.argv[3]), sys.argv[4]
    done = refused = 0
    while done < n and time.monotonic() < end:
        socks = [connect(addr) for _ in range(min(20, n - done))]
        for i, s in enumerate(socks):
            readline(s)
            if (done + i) % 4 == 3:
                s.sendall(b"TAKE\n")
            else:
                s.sendall(("HELLO 2 auth=%s:%s\n" % (secrets.token_hex(32),
                    secrets.token_hex(32))).encode())
        for s in socks:
            if readline(s).startswith("ERR AUTH "):
                refused += 1
            s.close()
        done += len(socks)
        note(progress, "%d %d" % (done, refused))
elif mode == "lines":
    # lines ADDR N: open N connections one after another, print the first line each one reads
    # at once (its greeting), then, for every one, what it reads next up to 2 s (or "-")
    socks = []
    for i in range(int(sys.argv[3])):
        s = connect(addr)
        print(readline(s), flush=True)
        socks.append(s)
    for s in socks:
        s.settimeout(2)
        try:
            print(readline(s) or "EOF")
        except socket.timeout:
            print("-")
'
# shellcheck disable=SC2090 # passed whole to python3 -c
export PEER_PY	# jq_bg runs peer in a child bash

# open_files_limit N: raise the soft limit of open files to N (or to the hard limit if lower);
# print the limit that holds now
open_files_limit() {
	local hard
	hard=$(ulimit -Hn)
	[[ $hard == unlimited ]] || (($1 < hard)) || set -- "$hard"
	ulimit -Sn "$1"
	ulimit -Sn
}

# sum_summaries WHAT: the sum of the counts in the server log's summary lines of WHAT
sum_summaries() {
	sed -n "s/.*$1: \([0-9]*\) in the last .*/\1/p" "$SERVER_LOG" | awk '{ n += $1 } END { print n + 0 }'
}

# check_results DIR: every DIR/*.txt has its .result, in upper case
check_results() {
	local f
	for f in "$1"/*.txt; do
		cmp <(tr '[:lower:]' '[:upper:]' <"$f") "$f.result" || fail "wrong or missing result for $f"
	done
}

@test "5000 idle connections without a token: a worker gets in at once, and the log has a handful of lines about them" {
	local lim n opened lines
	lim=$(open_files_limit 6000)
	n=$((lim - 200 < 5000 ? lim - 200 : 5000))
	((n >= 1000)) || skip "only $lim open files allowed (ulimit -Hn)"
	make_files "$D/in" 10 txt
	mkdir -p "$D/tmp"
	start_server "$D"/in/*.txt
	jq_bg peer idle "$SERVER" "$n" "$D/ready"
	wait_for_file "$D/ready" 60
	opened=$(<"$D/ready")
	((opened == n)) || fail "the flood opened $opened of $n connections"
	# the flood is still open (its connections wait up to 10 s to authenticate)
	run timeout -k 5 60 jq-run --tmpdir "$D/tmp" -j 2 "$SERVER" -- tr '[:lower:]' '[:upper:]'
	assert_success
	check_results "$D/in"
	wait_server_exit 60
	assert_equal "$status" 0
	# one line each for the first few, then a summary per 10 s (and one at exit)
	lines=$(grep -c -E 'dropped|refused|turned away|handshake|authenticat' "$SERVER_LOG" || true)
	((lines <= 12)) || fail "$lines log lines about the flood"
	(($(sum_summaries 'connections turned away') >= n - 256)) ||
		fail "the summaries count $(sum_summaries 'connections turned away') of $n - 256 drops"
}

@test "a flood of wrong-token handshakes: a worker runs every job meanwhile, the log summarises them" {
	local lines ndone refused h
	make_files "$D/in" 20 txt
	mkdir -p "$D/tmp"
	# --linger: the server outlives the jobs while the flood goes on; it lingers only for a
	# worker that may come back (jq-serve(1)): one jq-take that leaves untold
	start_server --linger 60s "$D"/in/*.txt
	h=$(jq-take -o "$D/first" "$SERVER")
	tr '[:lower:]' '[:upper:]' <"$D/first" >"$D/first.out"
	run -0 jq-put "$SERVER" "$h" "$D/first.out"
	jq_bg peer badhello "$SERVER" 2000 "$D/progress"
	local pid=$!
	wait_for_file "$D/progress" 60
	run timeout -k 5 60 jq-run --tmpdir "$D/tmp" -j 2 "$SERVER" -- tr '[:lower:]' '[:upper:]'
	assert_success
	check_results "$D/in"
	wait_pid "$pid" 90
	assert_equal "$status" 0
	read -r ndone refused <"$D/progress"
	assert_equal "$ndone" 2000
	assert_equal "$refused" 2000
	stop_server
	lines=$(grep -c -E 'refused|handshake|authenticat' "$SERVER_LOG" || true)
	((lines <= 20)) || fail "$lines log lines about 2000 failed handshakes"
	assert_equal "$(sum_summaries 'failed handshakes')" 2000
}

@test "--max-conns counts authenticated connections only: 20 idle ones do not keep workers out" {
	make_files "$D/in" 6 txt
	mkdir -p "$D/tmp"
	start_server --max-conns 2 "$D"/in/*.txt
	jq_bg peer idle "$SERVER" 20 "$D/ready"
	wait_for_file "$D/ready" 60
	run timeout -k 5 60 jq-run --tmpdir "$D/tmp" -j 2 "$SERVER" -- tr '[:lower:]' '[:upper:]'
	assert_success
	check_results "$D/in"
}

@test "past --max-unauth the oldest connection still authenticating is dropped with ERR LIMIT" {
	printf 'x\n' >"$D/a"
	start_server --max-unauth 3 "$D/a"
	run peer lines "$SERVER" 5
	assert_success
	# five greetings; the first two were dropped to make room for the fourth and fifth
	assert_equal "${#lines[@]}" 10
	local i
	for ((i = 0; i < 5; i++)); do
		[[ ${lines[i]} == 'JQ 2 jq-serve/'* ]] || fail "connection $i greeted with '${lines[i]}'"
	done
	assert_equal "${lines[5]}" 'ERR LIMIT too many connections waiting to authenticate; closing'
	assert_equal "${lines[6]}" 'ERR LIMIT too many connections waiting to authenticate; closing'
	assert_equal "${lines[7]}" -
	assert_equal "${lines[8]}" -
	assert_equal "${lines[9]}" -
}

@test "an authenticated place taken while a peer authenticates: its HELLO gets ERR LIMIT" {
	local a b
	printf 'x\n' >"$D/a"
	start_server --max-conns 1 "$D/a"
	exec {a}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	exec {b}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	# both are greeted (both still authenticating) before the first one says HELLO
	IFS= read -t 20 -r greeting <&"$b" || fail "no greeting on the second connection"
	[[ $greeting == 'JQ 2 jq-serve/'* ]] || fail "second connection greeted with '$greeting'"
	local greeting_b=$greeting
	IFS= read -t 20 -r greeting <&"$a" || fail "no greeting on the first connection"
	hello_line 2 >&"$a"
	IFS= read -t 20 -r line <&"$a" || fail "no answer to the first HELLO"
	[[ $line == 'OK 2 auth='* ]] || fail "first HELLO answered '$line'"
	greeting=$greeting_b
	hello_line 2 >&"$b"
	IFS= read -t 20 -r line <&"$b" || fail "no answer to the second HELLO"
	assert_equal "$line" 'ERR LIMIT too many connections; closing'
	IFS= read -t 20 -r line <&"$b" && fail "the second connection stays open: '$line'"
	# a third one is refused at once, in place of the greeting
	exec {b}>&-
	exec {b}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	IFS= read -t 20 -r line <&"$b" || fail "nothing on the third connection"
	assert_equal "$line" 'ERR LIMIT too many connections; closing'
	exec {a}>&- {b}>&-
}
