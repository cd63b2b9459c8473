#!/usr/bin/env bats
# tests/add.bats: the living queue's core (issue 11, phase A).  Jobs added while the server runs
# (jq-put --add): their data is durable in the state directory before the id is printed, their
# names are their identity (--if-new), their results land under safe names in the server's
# result directory.  jq-serve --keep, and a server with no files, serve until jq-put --shutdown.
# The journal's A records bring added jobs back after kill -9, and nothing half-added survives
# a crash between spool and journal or a full disk.
#
# Nothing here depends on timing: waits are bounded loops on files or exits; the crash between
# spool and journal is the JQ_TEST_SPOOL_KILL seam, a full journal the JQ_TEST_JOURNAL_TEAR one.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
	mkdir -p "$D/out"
}

teardown() {
	jq_teardown
	if [[ -n ${TMPFS:-} ]] && mountpoint -q "$TMPFS"; then
		umount "$TMPFS" || umount -l "$TMPFS"
	fi
}

# serve_pid: the jq-serve process itself (SERVER_PID is its watchdog's)
serve_pid() {
	pgrep -P "$SERVER_PID" -x jq-serve
}

# spool_dir / journal: the spool directory and the journal in $JQ_STATE_DIR (one of each)
spool_dir() {
	local d=("$JQ_STATE_DIR"/spool-*)
	[[ -d ${d[0]} ]] || fail "no spool directory in $JQ_STATE_DIR"
	echo "${d[0]}"
}
journal() {
	local f=("$JQ_STATE_DIR"/journal-*)
	[[ -f ${f[0]} ]] || fail "no journal in $JQ_STATE_DIR"
	echo "${f[0]}"
}

# spool_files: the names in the spool directory, sorted, on one line
spool_files() {
	ls -A "$(spool_dir)" | sort | tr '\n' ' '
}

# wait_spool_empty: wait until the spool directory holds nothing (a done job's data goes just
# after the replies its result allows are written)
wait_spool_empty() {
	local i
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		[[ -z $(spool_files) ]] && return 0
		sleep 0.05
	done
	fail "the spool still holds: $(spool_files)"
}

# stat_is EXPR...: jq-stat --json of $SERVER satisfies each python EXPR (j is the document)
stat_is() {
	jq-stat --json "$SERVER" >"$D/stat.json"
	json_file_check "$D/stat.json" "$@"
}

@test "add: jobs added while jq-run works get the next ids, run, and land under safe names" {
	printf 'first\n' >"$D/in/f1"
	printf 'alpha\n' >"$D/in/a.txt"
	printf 'beta\n' >"$D/in/b.txt"
	start_server -v --keep -o "$D/out" "$D/in/f1"
	jq_bg jq-run -j 2 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	local run_pid=$!
	wait_for_file "$D/out/f1.result"
	run -0 jq-put --add "$SERVER" "$D/in/a.txt" "$D/in/b.txt"
	assert_output $'2\n3'
	run -0 jq-put --add "$SERVER" --name 'sub/dir x.txt' <<<'gamma'
	assert_output 4
	wait_for_file "$D/out/a.txt.result"
	wait_for_file "$D/out/b.txt.result"
	wait_for_file "$D/out/sub%2Fdir x.txt.result"
	assert_equal "$(cat "$D/out/a.txt.result")" ALPHA
	assert_equal "$(cat "$D/out/b.txt.result")" BETA
	assert_equal "$(cat "$D/out/sub%2Fdir x.txt.result")" GAMMA
	assert_file_not_exist "$D/out/sub"
	# every result stored: the spool holds nothing
	wait_spool_empty
	stat_is 'j["jobs"]["total"] == 4' 'j["jobs"]["done"] == 4'
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	assert_equal "$status" 0
	wait_pid "$run_pid" 30
	assert_equal "$status" 0
}

@test "add: a server with no files waits (TAKE wait=0 is a timeout, not the end) until jq-put --shutdown, which lets the running job finish" {
	start_server -v -o "$D/out"
	run -5 jq-take -w 0 -o "$D/job" "$SERVER"
	run -0 jq-put --add "$SERVER" --name one <<<'data one'
	assert_output 1
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	run -0 jq-put --shutdown "$SERVER"
	# shutting down: no more adds or takes; the running job may still deliver
	run -6 jq-put --add "$SERVER" --name two <<<'data two'
	assert_output --partial 'shutting down'
	run -3 jq-take -w 0 -o "$D/job2" "$SERVER"
	_jq_exited "$SERVER_PID" && fail "the server ended with a job running"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/job"
	wait_server_exit 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/out/one.result")" 'data one'
	grep -qF 'shutdown asked by' "$SERVER_LOG"
	# a --keep server's queue outlives it: the journal stays, and the next start knows job 1
	grep -q '^A 1 one ' "$(journal)"
	start_server -v -o "$D/out"
	run -0 jq-put --add --if-new "$SERVER" --name one <<<'again'
	assert_output 1
	run -0 jq-put --add "$SERVER" --name two <<<'data two'
	assert_output 2
}

@test "add: a name is a job's identity: refused when taken (exit 4), --if-new prints the job's id" {
	start_server -v -o "$D/out"
	run -0 jq-put --add "$SERVER" --name a.txt <<<'first'
	assert_output 1
	run --separate-stderr -4 jq-put --add "$SERVER" --name a.txt <<<'second'
	assert_output ''
	[[ $stderr == *'job 1 has that name'* ]] || fail "stderr: $stderr"
	run -0 jq-put --add --if-new "$SERVER" --name a.txt <<<'third'
	assert_output 1
	# a FILE is named by its base name; --if-new among new names adds the new ones
	printf 'b\n' >"$D/in/b.txt"
	printf 'a\n' >"$D/in/a.txt"
	run -0 jq-put --add --if-new "$SERVER" "$D/in/a.txt" "$D/in/b.txt"
	assert_output $'1\n2'
	run -0 jq-run --max-jobs 2 -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	assert_equal "$(cat "$D/out/a.txt.result")" first
	assert_equal "$(cat "$D/out/b.txt.result")" b
	stat_is 'j["jobs"]["total"] == 2'
}

@test "add: hostile names are made safe inside the result directory; one with no safe result name is refused" {
	start_server -v -o "$D/out"
	# (not "i": bats' run -0 sets a global of that name)
	local name want=1
	for name in '../x' '/abs' '.hidden' $'new\nline' '50%' '..'; do
		run -0 jq-put --add "$SERVER" --name "$name" <<<"job $want"
		assert_output "$want"
		want=$((want + 1))
	done
	run -0 jq-run --max-jobs 6 -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	assert_equal "$(cat "$D/out/%2E.%2Fx.result")" 'job 1'
	assert_equal "$(cat "$D/out/%2Fabs.result")" 'job 2'
	assert_equal "$(cat "$D/out/%2Ehidden.result")" 'job 3'
	assert_equal "$(cat "$D/out/new%0Aline.result")" 'job 4'
	assert_equal "$(cat "$D/out/50%25.result")" 'job 5'
	assert_equal "$(cat "$D/out/%2E..result")" 'job 6'
	# nothing was written anywhere else
	assert_equal "$(find "$D" -name '*.result' ! -path "$D/out/*" | wc -l)" 0
	assert_equal "$(ls -A "$D/out" | wc -l)" 6
	# a name whose result would be longer than NAME_MAX
	run --separate-stderr -4 jq-put --add "$SERVER" --name "$(printf 'n%.0s' {1..300})" <<<'x'
	[[ $stderr == *'no safe result name'* ]] || fail "stderr: $stderr"
}

@test "add: a result that would be a listed job's result, or overwrite an input, is refused (exit 4)" {
	printf 'a\n' >"$D/in/a.txt"
	printf 'c\n' >"$D/out/c.dat"
	start_server -v --keep -o "$D/out" -r '{stem}' "$D/in/a.txt" "$D/out/c.dat"
	run --separate-stderr -4 jq-put --add "$SERVER" --name a.txt <<<'x'
	[[ $stderr == *'would be the result of job 1'* ]] || fail "stderr: $stderr"
	run --separate-stderr -4 jq-put --add "$SERVER" --name c.dat.x <<<'x'
	[[ $stderr == *'would overwrite the input of job 2'* ]] || fail "stderr: $stderr"
	run -0 jq-put --add "$SERVER" --name d.txt <<<'x'
	assert_output 3
	run --separate-stderr -4 jq-put --add "$SERVER" --name d.y <<<'x'
	[[ $stderr == *'would be the result of job 3'* ]] || fail "stderr: $stderr"
	assert_equal "$(cat "$D/out/c.dat")" c
}

@test "add: kill -9 right after jq-put --add printed the ids; the same command line brings the jobs back with their ids and data" {
	head -c 300000 /dev/urandom >"$D/in/big"
	printf 'small\n' >"$D/in/small"
	start_server -v -o "$D/out"
	run -0 jq-put --add "$SERVER" "$D/in/big" "$D/in/small"
	assert_output $'1\n2'
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	start_server -v -o "$D/out"
	grep -qF '0 done, 0 failed, 2 to run' "$SERVER_LOG"
	stat_is 'j["jobs"]["total"] == 2' 'j["jobs"]["waiting"] == 2'
	run -0 jq-put --add --if-new "$SERVER" "$D/in/big"
	assert_output 1
	run -0 jq-run --max-jobs 2 -j 2 --tmpdir "$TMPD" "$SERVER" -- cat
	cmp "$D/in/big" "$D/out/big.result"
	cmp "$D/in/small" "$D/out/small.result"
	run -0 jq-put --add "$SERVER" --name third <<<'3'
	assert_output 3
}

@test "add: a crash between spool and journal (JQ_TEST_SPOOL_KILL) leaves no job and no spool file; the id is given again" {
	JQ_TEST_SPOOL_KILL=2 start_server -v -o "$D/out"
	run -0 jq-put --add "$SERVER" --name one <<<'1'
	assert_output 1
	run -6 jq-put --add "$SERVER" --name two <<<'2'
	wait_server_exit 30
	# the seam struck where it should: the data named 2, with no record
	assert_equal "$(spool_files)" "1 2 "
	run grep -c '^A ' "$(journal)"
	assert_output 1
	start_server -v -o "$D/out"
	assert_equal "$(spool_files)" "1 "
	grep -qF 'an add that was never journaled' "$SERVER_LOG"
	stat_is 'j["jobs"]["total"] == 1'
	run -0 jq-put --add "$SERVER" --name two <<<'2'
	assert_output 2
}

@test "add: data that does not fit the state directory (tmpfs) is refused, naming why; nothing partial stays" {
	TMPFS=$D/state
	mkdir -p "$TMPFS"
	if ! mount -t tmpfs -o size=256k tmpfs "$TMPFS" 2>/dev/null; then
		TMPFS=
		skip "needs root to mount tmpfs"
	fi
	export JQ_STATE_DIR=$TMPFS/jq
	head -c 1M /dev/zero >"$D/in/huge"
	start_server -v -o "$D/out"
	run --separate-stderr -7 jq-put --add "$SERVER" "$D/in/huge"
	assert_output ''
	[[ $stderr == *'No space left on device'* && $stderr == *'nothing added'* ]] ||
		fail "stderr: $stderr"
	assert_equal "$(spool_files)" ""
	assert_equal "$(stat -c %s "$(journal)")" 0
	run -0 jq-put --add "$SERVER" --name small <<<'fits'
	assert_output 1
}

@test "add: a journal that cannot take the A record (JQ_TEST_JOURNAL_TEAR) fails the add, removes its data, and gives its id to the next" {
	JQ_TEST_JOURNAL_TEAR=2 start_server -v -o "$D/out"
	run -0 jq-put --add "$SERVER" --name one <<<'1'
	assert_output 1
	run --separate-stderr -7 jq-put --add "$SERVER" --name two <<<'2'
	[[ $stderr == *'No space left on device'* ]] || fail "stderr: $stderr"
	assert_equal "$(spool_files)" "1 "
	run -0 jq-put --add "$SERVER" --name three <<<'3'
	assert_output 2
	run cut -d' ' -f1-3 "$(journal)"
	assert_output $'A 1 one\nA 2 three'
}

@test "add: a restart that finds a waiting job's data gone fails that job, saying why; a failed job keeps its data for --retry; a done one's is removed" {
	start_server -v --retries 0 -o "$D/out"
	run -0 jq-put --add "$SERVER" --name bad <<<'fail me'
	run -0 jq-put --add "$SERVER" --name good <<<'ok'
	run -0 jq-put --add "$SERVER" --name lost <<<'gone'
	run -1 jq-run --max-jobs 2 -j 1 --tmpdir "$TMPD" "$SERVER" -- \
		sh -c 'x=$(cat); [ "$x" = ok ] || exit 3; echo "$x"'
	assert_equal "$(cat "$D/out/good.result")" ok
	assert_equal "$(spool_files)" "1 3 "
	stop_server
	rm "$(spool_dir)/3"
	start_server -v -o "$D/out"
	grep -q 'job 3 lost: its data .* is gone' "$SERVER_LOG"
	stat_is 'j["jobs"]["failed"] == 2' 'j["jobs"]["done"] == 1' \
		'[f["id"] for f in j["failed"]] == ["1", "3"]'
	run -0 jq-put --retry "$SERVER" 1
	run --separate-stderr -4 jq-put --retry "$SERVER" 3
	[[ $stderr == *'its data is gone'* ]] || fail "stderr: $stderr"
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	assert_equal "$(cat "$D/out/bad.result")" 'fail me'
	wait_spool_empty
}

@test "add: the command line: stdin needs --name, --name names one job, a missing FILE adds nothing, JQ_SERVER and a FILE operand" {
	start_server -v -o "$D/out"
	printf 'a\n' >"$D/in/a"
	run --separate-stderr -2 jq-put --add "$SERVER" <<<'x'
	[[ $stderr == *'needs --name'* ]] || fail "stderr: $stderr"
	run -2 jq-put --add --name n "$SERVER" "$D/in/a" "$D/in/a"
	run -2 jq-put --name n "$SERVER" 1:0123456789abcdef0123456789abcdef
	run -2 jq-put --add --shutdown "$SERVER"
	run -8 jq-put --add "$SERVER" "$D/in/a" "$D/in/missing"
	stat_is 'j["jobs"]["total"] == 0'
	JQ_SERVER=$SERVER run -0 jq-put --add "$D/in/a"
	assert_output 1
	JQ_SERVER=$SERVER run -0 jq-put --add --name piped - <<<'p'
	assert_output 2
	# the first failure stops, saying which FILEs went before it
	printf 'b\n' >"$D/in/b"
	run --separate-stderr -4 jq-put --add "$SERVER" "$D/in/b" "$D/in/a"
	assert_output 3
	[[ $stderr == *'the 1 FILE before it was added'* ]] || fail "stderr: $stderr"
}
