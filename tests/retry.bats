#!/usr/bin/env bats
# tests/retry.bats: a job that failed and runs again (jq-serve --retries) goes to another node
# first: a worker name less a trailing "/<digits>" (jq-run's slots NAME/1 ... NAME/N are one
# node); the failing node gets it back only when nothing else may be taken.  See jq-serve(1),
# --retries, and jq-protocol(7), TAKE.  The workers here are jq-take and jq-put --fail, whose
# FAIL reply now carries done= (an extra key jq-put must ignore: every jq-put here exits 0).

# shellcheck disable=SC2154 # $output and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
}

# serve_ab ARG...: a server for the two jobs a.txt (id 1) and b.txt (id 2)
serve_ab() {
	printf 'alpha\n' >"$D/a.txt"
	printf 'beta\n' >"$D/b.txt"
	start_server "$@" "$D/a.txt" "$D/b.txt"
}

# take WORKER ID: jq-take as WORKER must get job ID now; its handle goes to $HANDLE
take() {
	run -0 jq-take -w 0 --worker "$1" -o "$D/data" "$SERVER"
	assert_handle "$2"
}

@test "retry: a job failed on node w1 (w1/1) goes to w2, not to w1/2, while another job waits" {
	local ha hb
	serve_ab -v --retries 1 --linger 0
	take w1/1 1
	ha=$HANDLE
	take w3 2
	hb=$HANDLE
	run -0 jq-put --fail -m 'a broke' "$SERVER" "$ha"
	run -0 jq-put --fail -m 'b broke' "$SERVER" "$hb"
	# both wait again, a first in line: w1's second slot passes a over for b
	take w1/2 2
	hb=$HANDLE
	take w2 1
	ha=$HANDLE
	run -0 jq-put "$SERVER" "$ha" "$D/a.txt"
	run -0 jq-put "$SERVER" "$hb" "$D/b.txt"
	wait_server_exit 60
	assert_equal "$status" 0
	grep -q 'job 1 .*a.txt taken by w2 (attempt 2)' "$SERVER_LOG"
	grep -q 'job 2 .*b.txt taken by w1/2 (attempt 2)' "$SERVER_LOG"
}

@test "retry: a lone worker gets its own node's failed job back when nothing else waits" {
	serve_ab --retries 2 --linger 0
	take w1/1 1
	run -0 jq-put "$SERVER" "$HANDLE" "$D/a.txt"
	take w1/1 2
	run -0 jq-put --fail "$SERVER" "$HANDLE"
	take w1/2 2
	run -0 jq-put --fail "$SERVER" "$HANDLE"
	# the same name again, slot number and all
	take w1/2 2
	run -0 jq-put "$SERVER" "$HANDLE" "$D/b.txt"
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(<"$D/b.txt.result")" beta
}
