#!/usr/bin/env bats
# tests/manage.bats: changing the queue by hand (issue 11).  jq-put --cancel fails a waiting job
# for good as "cancelled" (journaled: a restart keeps it so), and refuses a running or finished
# one (exit 4); --retry runs a cancelled job again.  jq-put --drain WORKER gives the matching
# workers no new job: jq-run finishes and delivers its running job, then exits 0, while other
# workers go on; the drain survives kill -9 (journaled) until --undrain.  jq-put's verbs exclude
# each other.  See jq-put(1), jq-run(1) (Drained), and jq-protocol(7), CANCEL and DRAIN.
#
# Nothing here depends on timing: a job holds on until a mark file appears.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
	mkdir -p "$D/out"
}

# serve: a --keep server with results in $D/out, on a UNIX socket whose path stays the same
# across restarts
serve() {
	start_server -v --keep -o "$D/out" -l "unix:$JQ_TMP/s"
}

# serve_pid: the jq-serve process itself (SERVER_PID is its watchdog's)
serve_pid() {
	pgrep -P "$SERVER_PID" -x jq-serve
}

# stat_is EXPR...: jq-stat --json of $SERVER satisfies each python EXPR (j is the document)
stat_is() {
	jq-stat --json "$SERVER" >"$D/stat.json"
	json_file_check "$D/stat.json" "$@"
}

# gated NAME: a jq-run command line (after --) that says it started in $M/NAME.started, then
# holds its job until $M/go appears, then copies its data
gated() {
	printf '%s\n' sh -c "echo x >\"\$M/$1.started\"; while [ ! -e \"\$M/go\" ]; do sleep 0.05; done; cat"
}

@test "manage: --cancel fails a waiting job for good as cancelled; no worker gets it, jq-stat shows it, a restart keeps it; --retry runs it again" {
	serve
	run -0 jq-put --add "$SERVER" --name keep <<<'keep'
	run -0 jq-put --add "$SERVER" --name drop <<<'drop'
	run -0 jq-put --cancel "$SERVER" 2
	assert_output ''
	stat_is 'j["jobs"]["failed"] == 1' 'j["jobs"]["waiting"] == 1' \
		'j["failed"][0]["id"] == "2"' 'j["failed"][0]["status"] == "cancelled"'
	run -0 jq-stat --list --state failed "$SERVER"
	assert_output --partial 'cancelled'
	# a worker gets job 1 only
	run -0 jq-run -j 1 --max-jobs 1 --tmpdir "$TMPD" --worker w "$SERVER" -- cat
	assert_equal "$(cat "$D/out/keep.result")" keep
	assert_file_not_exist "$D/out/drop.result"
	run -5 jq-take -w 0 -o "$D/job" "$SERVER"
	run grep -c 'taken by' "$SERVER_LOG"
	assert_output 1
	grep -q 'job 2 drop cancelled by' "$SERVER_LOG"
	# journaled: kill -9 and the same command line: still cancelled
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	serve
	stat_is 'j["jobs"]["failed"] == 1' 'j["failed"][0]["status"] == "cancelled"'
	run -5 jq-take -w 0 -o "$D/job" "$SERVER"
	# a cancelled job is a failed one: --retry, and it runs
	run -0 jq-put --retry "$SERVER" 2
	run -0 jq-run -j 1 --max-jobs 1 --tmpdir "$TMPD" "$SERVER" -- cat
	assert_equal "$(cat "$D/out/drop.result")" drop
}

@test "manage: --cancel of a running job is refused (4) and it runs on; of a finished one too; --name cancels by name" {
	serve
	run -0 jq-put --add "$SERVER" --name busy <<<'busy'
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	run --separate-stderr -4 jq-put --cancel "$SERVER" 1
	[[ $stderr == *'job 1 is running'*'only a waiting job can be cancelled'* ]] ||
		fail "stderr: $stderr"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/job"
	run --separate-stderr -4 jq-put --cancel "$SERVER" 1
	[[ $stderr == *'job 1 already has a result'* ]] || fail "stderr: $stderr"
	run -0 jq-put --add "$SERVER" --name 'by name' <<<'x'
	run -0 jq-put --cancel --name 'by name' "$SERVER"
	run --separate-stderr -4 jq-put --cancel --name 'by name' "$SERVER"
	[[ $stderr == *'job 2 already failed'* ]] || fail "stderr: $stderr"
	run -4 jq-put --cancel "$SERVER" 7
	run -4 jq-put --cancel --name nosuch "$SERVER"
	# a waiter for a job that is cancelled hears so (exit 1)
	run -0 jq-put --add "$SERVER" --name waited <<<'w'
	jq_bg sh -c 'exec jq-put --wait "$1" 3 2>"$2"' _ "$SERVER" "$D/w.err"
	local w=$!
	wait_log_re 'job 3 waited: .* waits for its end'
	run -0 jq-put --cancel "$SERVER" 3
	wait_pid "$w" 30
	assert_equal "$status" 1
	grep -q 'job 3 failed (cancelled): waited' "$D/w.err"
}

@test "manage: --drain of a jq-run worker while it runs a job: it delivers, exits 0 and takes nothing more; another worker goes on" {
	serve
	# w1 takes the first job and holds it until $M/go
	local cmd
	mapfile -t cmd < <(gated g)
	jq_bg jq-run -j 1 --worker w1 --tmpdir "$TMPD" "$SERVER" -- "${cmd[@]}"
	local w1=$!
	run -0 jq-put --add "$SERVER" --name first <<<'first'
	wait_for_file "$M/g.started"
	run --separate-stderr -0 jq-put --drain "$SERVER" w1
	assert_equal "$stderr" ''
	grep -q 'workers matching w1 drained by' "$SERVER_LOG"
	run -0 jq-put --add "$SERVER" --name second <<<'second'
	run -0 jq-put --add "$SERVER" --name third <<<'third'
	touch "$M/go"
	wait_pid "$w1" 60
	assert_equal "$status" 0
	assert_equal "$(cat "$D/out/first.result")" first
	# w1 delivered its job and took no other: w2 runs them
	run -0 jq-run -j 2 --worker w2 --max-jobs 2 --tmpdir "$TMPD" "$SERVER" -- cat
	assert_equal "$(cat "$D/out/second.result")" second
	assert_equal "$(cat "$D/out/third.result")" third
	run grep -c 'taken by w1' "$SERVER_LOG"
	assert_output 1
	grep -q 'job 1 first done by w1' "$SERVER_LOG"
}

@test "manage: a drain matches a worker's name, its node (NAME of NAME/N) or a glob, holds across kill -9, and --undrain ends it" {
	serve
	run -0 jq-put --add "$SERVER" --name a <<<'a'
	# no worker connected: said, and drained all the same
	run --separate-stderr -0 jq-put --drain "$SERVER" node1
	[[ $stderr == *'no worker matching node1 is connected now'* ]] || fail "stderr: $stderr"
	run --separate-stderr -3 jq-take -w 0 --worker node1/2 -o "$D/job" "$SERVER"
	[[ $stderr == *'drained'* ]] || fail "stderr: $stderr"
	run -3 jq-take -w 0 --worker node1 -o "$D/job" "$SERVER"
	run -0 jq-put --drain "$SERVER" 'gpu*'
	run -3 jq-take -w 0 --worker gpu7 -o "$D/job" "$SERVER"
	# a drained jq-run, --keep or not, exits 0 at once
	run -0 jq-run -j 2 --keep --worker node1 --tmpdir "$TMPD" "$SERVER" -- cat
	# journaled: kill -9 and the same command line
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	serve
	run -3 jq-take -w 0 --worker node1/1 -o "$D/job" "$SERVER"
	run -3 jq-take -w 0 --worker gpu1 -o "$D/job" "$SERVER"
	# undrain: only a pattern drained; the refusal names those that are
	run --separate-stderr -4 jq-put --undrain "$SERVER" node
	[[ $stderr == *'node is not drained; drained: node1 gpu*'* ]] || fail "stderr: $stderr"
	run -0 jq-put --undrain "$SERVER" node1
	run -0 jq-take -w 0 --worker node1/1 -o "$D/job" "$SERVER"
	assert_handle 1
	grep -q 'workers matching node1 no longer drained' "$SERVER_LOG"
	# the undrain is journaled too
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	serve
	run -0 jq-put --add "$SERVER" --name b <<<'b'
	run -0 jq-take -w 0 --worker node1/1 -o "$D/job" "$SERVER"
	run -3 jq-take -w 0 --worker gpu1 -o "$D/job" "$SERVER"
}

@test "manage: the command line: one verb at a time (but --add --wait), the operands each takes, usage errors exit 2" {
	serve
	local v
	for v in --fail --touch --retry --cancel --drain --undrain --shutdown; do
		run --separate-stderr -2 jq-put --wait "$v" "$SERVER" 1
		[[ $stderr == *'exclude each other'* ]] || fail "--wait $v: $stderr"
	done
	run -2 jq-put --cancel --drain "$SERVER" 1
	run -2 jq-put --add --wait "$SERVER" "$D/out" "$D/out"
	run -2 jq-put --reconnect 5 "$SERVER" 1:0123456789abcdef0123456789abcdef
	run -2 jq-put --wait --reconnect soon "$SERVER" 1
	run -2 jq-put --wait --reconnect 400d "$SERVER" 1
	run -2 jq-put --name x --retry "$SERVER" 1
	run -2 jq-put --if-new --wait "$SERVER" 1
	run -2 jq-put --wait "$SERVER"
	run -2 jq-put --wait "$SERVER" 1 2
	run -2 jq-put --wait "$SERVER" abc
	run -2 jq-put --wait --name x "$SERVER" 1
	run -2 jq-put --cancel "$SERVER" 0
	run -2 jq-put --drain "$SERVER"
	run -2 jq-put --drain "$SERVER" ''
	run -2 jq-put --drain "$SERVER" w1 w2
	run -2 jq-put --drain "$SERVER" "$(printf 'w%.0s' {1..300})"
	# JQ_SERVER: a lone operand is the ID or the WORKER
	run -0 jq-put --add "$SERVER" --name j <<<'j'
	JQ_SERVER=$SERVER run -0 jq-put --cancel 1
	JQ_SERVER=$SERVER run -0 jq-put --drain wx
	JQ_SERVER=$SERVER run -0 jq-put --undrain wx
	# the help names the verbs
	run -0 jq-put --help
	assert_output --partial '--wait'
	assert_output --partial '--drain'
	assert_output --partial 'jq-put --drain|--undrain [OPTION...] [SERVER] WORKER'
}
