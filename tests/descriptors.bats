#!/usr/bin/env bats
# tests/descriptors.bats: an idle connection costs jq-serve one descriptor (issue 14, "ten
# thousand connections").  The files connections open (a job's data or a WAIT's result being
# sent, a PUT's or an ADD's temporary file) come from one budget, reserved when a request needs
# them; a request that finds it spent waits, it is never refused.  See jq-serve(1), --max-conns,
# and jq-protocol(7), LIMITS.
#
# The descriptor limit is made tiny with `ulimit -n` (soft and hard) in the test's own shell,
# which jq-serve inherits.  Nothing here depends on timing.

# shellcheck disable=SC2034 # $conn is read by wire.bash

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup
	mkdir -p "$D/tmp" "$D/out"
	IDLE=()
}

# idle_hello N: open N connections to $SERVER (fds in IDLE); each is greeted and says HELLO
idle_hello() {
	local i fd
	for ((i = 0; i < $1; i++)); do
		exec {fd}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}" || fail "idle connection $i refused"
		IDLE+=("$fd")
		conn=$fd
		expect 'JQ 2 jq-serve/*' || fail "idle connection $i: greeting"
		sendl 'HELLO 2 name=idle' || fail "idle connection $i: send"
		expect 'OK 2*' || fail "idle connection $i: HELLO"
	done
	conn=
}

# idle_close: close the idle connections
idle_close() {
	local fd
	for fd in "${IDLE[@]}"; do exec {fd}>&-; done
	IDLE=()
}

@test "descriptors: under a limit of 200, --max-conns 85 is kept (one descriptor a connection): 75 idle connections and two workers" {
	ulimit -n 200
	make_files "$D/in" 30 txt
	start_server -vv --no-auth --linger 10m --max-conns 85 "$D"/in/*.txt
	grep -q 'max-conns lowered' "$SERVER_LOG" && fail "--max-conns was lowered: $(cat "$SERVER_LOG")"
	grep -qE 'descriptors: 200; 85 connections, [0-9]+ authenticating, [0-9]+ for files' "$SERVER_LOG" ||
		fail "no line about the descriptors: $(cat "$SERVER_LOG")"
	idle_hello 75
	run timeout -k 5 120 jq-run --no-auth --tmpdir "$D/tmp" -j 2 "$SERVER" -- tr '[:lower:]' '[:upper:]'
	assert_success
	for f in "$D"/in/*.txt; do
		cmp <(tr '[:lower:]' '[:upper:]' <"$f") "$f.result" || fail "wrong or missing result for $f"
	done
	# the idle ones still answer
	conn=${IDLE[0]}
	sendl STAT && expect 'STAT total=30 waiting=0 running=0 done=30 failed=0 *' || fail "first idle connection: STAT"
	conn=${IDLE[74]}
	sendl STAT && expect 'STAT total=30 *' || fail "last idle connection: STAT"
	conn=
	idle_close
	! grep -qi 'too many open files' "$SERVER_LOG" || fail "$(cat "$SERVER_LOG")"
}

@test "descriptors: with 4 for files, 16 workers share them: every job runs and every result is right" {
	ulimit -n 100
	make_files "$D/in" 200 txt
	start_server -vv --no-auth --max-conns 23 "$D"/in/*.txt
	grep -qE 'descriptors: 100; 23 connections, [0-9]+ authenticating, 4 for files' "$SERVER_LOG" ||
		fail "no line about the descriptors: $(cat "$SERVER_LOG")"
	run timeout -k 5 120 jq-run --no-auth --tmpdir "$D/tmp" -j 16 "$SERVER" -- tr '[:lower:]' '[:upper:]'
	assert_success
	for f in "$D"/in/*.txt; do
		cmp <(tr '[:lower:]' '[:upper:]' <"$f") "$f.result" || fail "wrong or missing result for $f"
	done
	wait_server_exit 30
	! grep -qiE 'too many open files|cannot store|ERR ' "$SERVER_LOG" || fail "$(cat "$SERVER_LOG")"
}

@test "descriptors: with 4 for files, 8 clients adding and waiting for their results and 8 workers share them" {
	ulimit -n 100
	local i pids=()
	for ((i = 0; i < 24; i++)); do
		head -c $((i * 1000 + 1)) /dev/urandom >"$D/in$i"
	done
	start_server -vv --no-auth --keep -o "$D/out" --max-conns 23
	grep -qE '4 for files' "$SERVER_LOG" || fail "no line about the descriptors: $(cat "$SERVER_LOG")"
	jq_bg jq-run --no-auth --tmpdir "$D/tmp" -j 8 "$SERVER" -- cat
	for ((i = 0; i < 8; i++)); do
		jq_bg sh -c 'for k in 0 8 16; do n=$(($1 + k)); jq-put --no-auth --add --wait "$2" "$3/in$n" >"$3/got$n" || exit 1; done' \
			adder "$i" "$SERVER" "$D"
		pids+=("$!")
	done
	for i in "${pids[@]}"; do
		wait_pid "$i" 120
		assert_equal "$status" 0
	done
	for ((i = 0; i < 24; i++)); do
		cmp "$D/in$i" "$D/got$i" || fail "result $i"
		cmp "$D/in$i" "$D/out/in$i.result" || fail "stored result $i"
	done
	! grep -qiE 'too many open files|cannot store|cannot spool' "$SERVER_LOG" || fail "$(cat "$SERVER_LOG")"
}

# hog PORT FILE: four workers that TAKE a job each, read its first byte and no more; FILE says
# so once all four have begun
hog() {
	python3 -c '
import socket, sys, time
s = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for i in range(4)]
for c in s:
    c.sendall(b"HELLO 2 name=hog\nTAKE hold=conn\n")
for c in s:
    c.recv(1)
open(sys.argv[2], "w").write("held\n")
time.sleep(600)' "$@"
}

@test "descriptors: with 4 for files, 4 workers that never read their jobs lose them after --stall-timeout; another worker gets one" {
	ulimit -n 100
	local i
	for ((i = 1; i <= 8; i++)); do
		truncate -s 20000000 "$D/f$i"	# more than the socket buffers hold
	done
	start_server -vv --no-auth --stall-timeout 1s "$D"/f*
	grep -qE '4 for files' "$SERVER_LOG" || fail "no line about the descriptors: $(cat "$SERVER_LOG")"
	jq_bg hog "${SERVER##*:}" "$D/held"
	wait_for_file "$D/held"
	run timeout -k 5 60 jq-take --no-auth -o "$D/got" "$SERVER"
	assert_success
	cmp "$D/got" "$D/f1" || fail "the job taken is not the input"
	grep -q 'output not read for' "$SERVER_LOG" || fail "no line about the stalled readers: $(cat "$SERVER_LOG")"
}
