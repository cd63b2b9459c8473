#!/usr/bin/env bats
# tests/identity.bats: a job is its name (issue 9, "a job is its name"): attempt tokens, results
# matched to jobs by their input across a restart, FAIL/RELEASE/TOUCH only from the holder, the
# TOUCH lease cap, and the crash limit.  See jq-protocol(7), "Attempt tokens".

# shellcheck disable=SC2154,SC2034 # $line is set by recv, $conn and $greeting read by wire.bash
bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup root sock worker
}

# open_conn ADDR: connect fd $conn to a TCP server; the greeting goes to $greeting
open_conn() {
	exec {conn}<>"/dev/tcp/${1%:*}/${1##*:}"
	recv
	greeting=$line
}

@test "a restart with one more file stores every spooled result under its own input" {
	local port out
	port=$(free_tcp_port)
	for f in b c d; do printf '%s-data\n' "$f" >"$D/$f"; done
	start_server -l "127.0.0.1:$port" "$D/b" "$D/c" "$D/d"
	out=$D/run.out
	jq-run --tmpdir "$TMPD" --reconnect 60s -j3 "127.0.0.1:$port" -- \
		sh -c 'sleep 2; cat' >"$out" 2>"$out.err" 3>&- &
	local jr=$!
	sleep 1
	# $SERVER_PID is the watchdog: kill jq-serve itself, as a crash would
	kill -KILL "$(pgrep -P "$SERVER_PID" | head -n 1)"
	wait_server_exit 30
	printf 'a-data\n' >"$D/a"
	start_server -l "127.0.0.1:$port" "$D/a" "$D/b" "$D/c" "$D/d"
	run -0 timeout 60 tail --pid="$jr" -f /dev/null
	wait "$jr" || fail "jq-run exited $?: $(cat "$out.err")"
	wait_server_exit 30
	((status == 0))
	for f in a b c d; do
		[[ $(<"$D/$f.result") == "$f-data" ]] ||
			fail "$f.result holds '$(cat "$D/$f.result")'; jq-run: $(cat "$out.err")"
	done
}

@test "a stale worker cannot fail, release or renew a job another worker now runs" {
	local h1 h2 tok
	printf 'input\n' >"$D/a"
	printf 'other\n' >"$D/b"
	start_server --lease 1 "$D/a" "$D/b"
	h1=$(jq-take --lease 1 -o "$D/in1" "$SERVER")
	sleep 2.5
	h2=$(jq-take --match '*/a' --wait 10 -o "$D/in2" "$SERVER")
	[[ ${h1%%:*} == "${h2%%:*}" && $h1 != "$h2" ]] || fail "handles '$h1' and '$h2'"
	run -4 jq-put --fail -m 'stale' "$SERVER" "$h1"
	assert_output --partial NOTHELD
	run -4 jq-put --touch "$SERVER" "$h1"
	assert_output --partial NOTHELD
	open_conn "$SERVER"
	sendl "$(hello_line 2 name=stale)"
	expect 'OK 2*'
	tok=${h1#*:}
	sendl "RELEASE ${h1%%:*} token=$tok"
	expect 'ERR NOTHELD *later attempt*'
	printf 'good\n' >"$D/res"
	run -0 jq-put --touch "$SERVER" "$h2"
	run -0 jq-put "$SERVER" "$h2" "$D/res"
	[[ $(<"$D/a.result") == good ]]
	jq-put "$SERVER" "$(jq-take -o "$D/in3" "$SERVER")" "$D/in3"
	wait_server_exit 30
	((status == 0))
}

@test "TOUCH's lease= is capped at the server's --lease" {
	local h
	printf 'x\n' >"$D/a"
	start_server --lease 2 "$D/a"
	open_conn "$SERVER"
	sendl "$(hello_line 2 name=toucher)"
	expect 'OK 2*'
	sendl 'TAKE'
	expect 'JOB 1 * token=*'
	h=${line##*token=}
	h=${h%% *}
	sendl "TOUCH 1 token=$h lease=86400"
	# the JOB's payload comes first
	while recv && [[ $line != 'OK 1 lease='* ]]; do :; done
	[[ $line == 'OK 1 lease=2' ]] || fail "TOUCH answered '$line'"
	# and the lease really runs out: the job goes to another worker
	sleep 3.5
	run -0 jq-take --wait 0 -o "$D/in2" "$SERVER"
}

@test "a job whose worker is lost --crash-limit times fails for good: lost N times" {
	printf 'x\n' >"$D/a"
	start_server --crash-limit 2 "$D/a"
	# the command kills its jq-run: the worker is lost, its connection closes
	run jq-run --tmpdir "$TMPD" "$SERVER" -- sh -c 'kill -9 $PPID; sleep 5'
	run jq-run --tmpdir "$TMPD" "$SERVER" -- sh -c 'kill -9 $PPID; sleep 5'
	wait_server_exit 30
	((status == 1))
	run -0 grep 'lost 2 times' "$SERVER_LOG"
	[[ ! -e $D/a.result ]]
}

@test "v2 requests about a job need its token: missing, malformed, wrong, another server's" {
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	start_server "$D/a" "$D/b"
	open_conn "$SERVER"
	sendl "$(hello_line 1)"
	expect 'ERR VERSION *'
	open_conn "$SERVER"
	sendl "$(hello_line 2 name=w)"
	expect 'OK 2*'
	sendl 'TAKE match=*/a'
	expect 'JOB 1 * token=*'
	local tok=${line##*token=}
	tok=${tok%% *}
	expect 'DATA 2' && expect x && expect 'END 2 *'
	sendl 'TOUCH 1' 'RELEASE 1 token=xyz' "FAIL 1 token=${tok:0:8}00000099${tok:16}"
	expect 'ERR PROTO *token=*'
	expect 'ERR PROTO *token=*'
	payload oops >&"$conn"
	expect 'ERR NOTHELD *'
	sendl "PUT 1"
	payload r >&"$conn"
	expect 'ERR PROTO *token=*'
	# a token of another server instance whose input is no job here
	sendl "PUT 2 token=ffffffff000000010123456789abcdef"
	payload r >&"$conn"
	expect 'ERR STALE no job here has that input*'
	# the same instance naming job 2 with job 1's attempt
	sendl "PUT 2 token=$tok"
	payload r >&"$conn"
	expect 'ERR STALE *'
	# another instance's token with a's input, sent as job 2: stored as a's, OK names job 1
	sendl "PUT 2 token=ffffffff00000001${tok:16}"
	payload r >&"$conn"
	expect 'OK 1'
	[[ $(<"$D/a.result") == r && ! -e $D/b.result ]]
}

@test "a result of an older attempt that cannot be stored leaves the job to its current holder" {
	local h1 h2
	printf 'input\n' >"$D/a"
	mkdir "$D/out"
	start_server --lease 1 -o "$D/out" "$D/a"
	h1=$(jq-take --lease 1 -o "$D/in1" "$SERVER")
	sleep 2.5
	h2=$(jq-take --wait 10 -o "$D/in2" "$SERVER")
	[[ ${h1%%:*} == "${h2%%:*}" && $h1 != "$h2" ]] || fail "handles '$h1' and '$h2'"
	# the result directory is gone: the stale worker's result gets ERR IO (7)
	rm -r "$D/out"
	run -7 jq-put "$SERVER" "$h1" "$D/in1"
	# the job is still the second worker's: not handed back, nobody else gets it
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^jobs +1 total, 0 waiting, 1 running'
	run -5 jq-take --wait 0 -o "$D/in3" "$SERVER"
	run -0 jq-put --touch "$SERVER" "$h2"
}

@test "a stale FAIL from before a restart gets the holder check's reason, not another job's outcome" {
	printf 'a\n' >"$D/in/a"
	printf 'b\n' >"$D/in/b"
	start_server "$D/in/a" "$D/in/b"
	run -0 jq-take -o "$D/x" "$SERVER"
	assert_handle 1
	run -0 jq-put "$SERVER" "$HANDLE" "$D/x"
	# job 1 is done here; a worker of an earlier server still holds a token for it
	run -4 --separate-stderr jq-put --fail "$SERVER" "$(old_handle 1 "$D/in/a")"
	[[ $stderr == *'earlier server'*'(NOTHELD)'* ]] || fail "got: $stderr"
	[[ $stderr != *'DONE'* ]]
	# the worker that ran it still hears that it is done
	run -4 --separate-stderr jq-put --fail "$SERVER" "$HANDLE"
	[[ $stderr == *'DONE'* ]] || fail "got: $stderr"
}
