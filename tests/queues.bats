#!/usr/bin/env bats
# tests/queues.bats: named queues and priorities (issue 11).  jq-put --add --queue NAME
# --priority N puts a job in a named queue; jq-take and jq-run --queue NAME take only from the
# queues they name (several: any of them), and a worker without --queue only from "default",
# the queue of jq-serve's files.  Higher priorities first, equal ones in arrival order; a
# released job goes back to the front of its own priority.  The journal's A records keep queue
# and priority across kill -9.  jq-stat shows per-queue counts, --list --queue filters, and
# the JSON listing carries queue and priority.
#
# Nothing here depends on timing: the order is checked through what the takes get, one take at
# a time; waits are bounded loops on files or exits.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup root sock worker
	mkdir -p "$D/out"
}

teardown() {
	jq_teardown
}

# serve_pid: the jq-serve process itself (SERVER_PID is its watchdog's)
serve_pid() {
	pgrep -P "$SERVER_PID" -x jq-serve
}

# take_name [jq-take OPTION...]: take a job from $SERVER; its name goes to stdout, its handle to
# $D/handle-NAME (for jq-put; a '/' in NAME is a '_' there)
take_name() {
	local out id name
	out=$(jq-take -n -o "$D/job" "$@" "$SERVER") || return
	id=${out%%$'\n'*}
	name=${out#*$'\n'}
	printf '%s\n' "$id" >"$D/handle-${name//\//_}"
	echo "$name"
}

# take_order N [jq-take OPTION...]: the names of N takes, space-separated
take_order() {
	local n=$1 i got=()
	shift
	for ((i = 0; i < n; i++)); do
		got+=("$(take_name -w 0 "$@")") || return
	done
	echo "${got[*]}"
}

# add QUEUE PRIORITY NAME: add a job NAME (data: NAME) to QUEUE with PRIORITY
add() {
	printf '%s\n' "$3" | jq-put --add --queue "$1" --priority "$2" --name "$3" "$SERVER" >/dev/null
}

# open_conn ADDR: connect fd $conn to a TCP server; the greeting goes to $greeting (hello_line's)
# shellcheck disable=SC2034 # $greeting is read by hello_line
open_conn() {
	exec {conn}<>"/dev/tcp/${1%:*}/${1##*:}"
	recv
	greeting=$line
}

@test "queues: two queues are kept apart; a worker without --queue gets only the files (the default queue)" {
	printf 'f1\n' >"$D/in/f1"
	printf 'f2\n' >"$D/in/f2"
	start_server -v -o "$D/out" "$D/in/f1" "$D/in/f2"
	add a 0 a1
	add a 0 a2
	add b 0 b1
	run -0 take_order 2 --queue a
	assert_output 'a1 a2'
	# a's jobs run: a take of queue a waits for them (here: -w 0 runs out, 5), though b has work
	run -5 jq-take -w 0 -o "$D/job" --queue a "$SERVER"
	run -0 take_order 2
	assert_output "$D/in/f1 $D/in/f2"
	run -5 jq-take -w 0 -o "$D/job" "$SERVER"
	jq-put "$SERVER" "$(<"$D/handle-a1")" "$D/job"
	jq-put "$SERVER" "$(<"$D/handle-a2")" "$D/job"
	# nothing of queue a can ever come: exit 3 at once, while b still has a job
	run -3 jq-take -o "$D/job" --queue a "$SERVER"
	run -0 take_order 1 --queue b
	assert_output b1
	jq-put "$SERVER" "$(<"$D/handle-b1")" "$D/job"
	# a queue nobody added to has nothing, now or later
	run -3 jq-take -o "$D/job" --queue nosuch "$SERVER"
	jq-put "$SERVER" "$(<"$D/handle-${D//\//_}_in_f1")" "$D/job"
	jq-put "$SERVER" "$(<"$D/handle-${D//\//_}_in_f2")" "$D/job"
	wait_server_exit 30
	assert_equal "$status" 0
	grep -qF 'job 5 b1 added by' "$SERVER_LOG"
}

@test "queues: a worker of two queues (--queue a --queue b, or a,b) gets the jobs of both and no other" {
	printf 'f1\n' >"$D/in/f1"
	start_server -v -o "$D/out" "$D/in/f1"
	add a 0 a1
	add b 0 b1
	add c 0 c1
	run -0 jq-run -j 1 --tmpdir "$TMPD" --queue a --queue b "$SERVER" -- tr a-z A-Z
	assert_equal "$(cat "$D/out/a1.result")" A1
	assert_equal "$(cat "$D/out/b1.result")" B1
	assert_file_not_exist "$D/out/c1.result"
	assert_file_not_exist "$D/out/f1.result"
	run -0 jq-run -j 1 --tmpdir "$TMPD" --queue c,default "$SERVER" -- tr a-z A-Z
	assert_equal "$(cat "$D/out/c1.result")" C1
	assert_equal "$(cat "$D/out/f1.result")" F1
	wait_server_exit 30
	assert_equal "$status" 0
}

@test "queues: --match composes with --queue (jq-take and jq-run)" {
	start_server -v -o "$D/out"
	add a 0 x.wav
	add a 0 y.txt
	add b 0 z.wav
	add a 0 w.wav
	run -0 take_order 2 --queue a --match '*.wav'
	assert_output 'x.wav w.wav'
	# y.txt waits in a, z.wav in b: neither matches a take of a's *.wav
	run -5 jq-take -w 0 -o "$D/job" --queue a --match '*.wav' "$SERVER"
	run -0 jq-run -j 1 --max-jobs 1 --tmpdir "$TMPD" --queue a,b --match 'z*' "$SERVER" -- cat
	assert_equal "$(cat "$D/out/z.wav.result")" z.wav
	run -0 take_order 1 --queue a
	assert_output y.txt
}

@test "queues: higher priority first, equal priorities in arrival order; across queues the older job wins a tie" {
	start_server -v -o "$D/out"
	add q 0 zero
	add q 5 five
	add q -3 minus
	add q 5 five2
	add q 1000 top
	add q -1000 bottom
	add q 0 zero2
	run -0 take_order 7 --queue q
	assert_output 'top five five2 zero zero2 minus bottom'
	add x 1 x1
	add y 2 y1
	add y 1 y2
	add x 1 x2
	add x 0 x3
	printf 'd\n' | jq-put --add --name d1 --priority 9 "$SERVER" >/dev/null
	run -0 take_order 5 --queue x,y
	assert_output 'y1 x1 y2 x2 x3'
	# the default queue's job was never offered to them
	run -0 take_order 1
	assert_output d1
}

@test "queues: a released job goes back to the front of its own priority level" {
	local h id
	start_server -v -o "$D/out"
	add q 1 one1
	add q 1 one2
	add q 1 one3
	add q 2 two1
	add q 0 zero1
	run -0 take_order 3 --queue q
	assert_output 'two1 one1 one2'
	h=$(<"$D/handle-one2")
	id=${h%%:*}
	open_conn "$SERVER"
	sendl "$(hello_line 2 name=releaser)"
	expect 'OK 2*'
	sendl "RELEASE $id token=${h#*:}"
	expect "OK $id"
	exec {conn}>&-
	run -0 take_order 3 --queue q
	assert_output 'one2 one3 zero1'
	# the JOB line names a named queue (and not the default one)
	add q2 0 last
	printf 'd\n' | jq-put --add --name plain "$SERVER" >/dev/null
	open_conn "$SERVER"
	sendl "$(hello_line 2 name=raw)"
	expect 'OK 2*'
	sendl 'TAKE queue=q2 wait=0'
	expect 'JOB 6 last size=5 attempt=1 lease=* token=* queue=q2'
	exec {conn}>&-
	run -0 jq-take -o "$D/job" "$SERVER"
	run -0 jq-stat --json --list --queue default "$SERVER"
	json_file_check <(echo "$output") '[r["name"] for r in j["list"]] == ["plain"]'
}

@test "queues: kill -9 and a restart keep each added job's queue and priority (journal q= and p=)" {
	start_server -v -o "$D/out"
	add a 0 a-low
	add a 7 a-high
	add b -2 b-low
	printf 'plain\n' | jq-put --add --name plain "$SERVER" >/dev/null
	local j=("$JQ_STATE_DIR"/journal-*)
	grep -q '^A 2 a-high [0-9]* [0-9a-f]* q=a p=7 ' "${j[0]}"
	grep -q '^A 4 plain [0-9]* [0-9a-f]* [0-9a-f]*$' "${j[0]}"
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	start_server -v -o "$D/out"
	jq-stat --json --list "$SERVER" >"$D/stat.json"
	json_file_check "$D/stat.json" \
		'[(r["name"], r["queue"], r["priority"]) for r in j["list"]] == [("a-low", "a", 0), ("a-high", "a", 7), ("b-low", "b", -2), ("plain", "default", 0)]' \
		'j["queues"]["a"]["waiting"] == 2 and j["queues"]["b"]["waiting"] == 1'
	run -0 take_order 3 --queue a,b
	assert_output 'a-high a-low b-low'
	run -0 take_order 1
	assert_output plain
	# and once more: the compacted journal keeps them too
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	start_server -v -o "$D/out"
	run -0 take_order 2 --queue a
	assert_output 'a-high a-low'
}

@test "queues: bad queue names, too many queues and out-of-range priorities are refused with clear errors" {
	start_server -v -o "$D/out"
	local bad
	for bad in '' 'a/b' 'a b' 'ü' "$(printf 'q%.0s' {1..65})"; do
		run --separate-stderr -2 jq-put --add --queue "$bad" --name x "$SERVER" <<<x
		[[ $stderr == *'is not a queue name (1 to 64 of the bytes A-Z a-z 0-9 . _ -)'* ]] ||
			fail "jq-put --queue '$bad': $stderr"
		run --separate-stderr -2 jq-take --queue "$bad" -o "$D/job" "$SERVER"
		[[ $stderr == *'is not a queue name'* ]] || fail "jq-take --queue '$bad': $stderr"
		run --separate-stderr -2 jq-run --queue "$bad" "$SERVER" -- cat
		[[ $stderr == *'is not a queue name'* ]] || fail "jq-run --queue '$bad': $stderr"
	done
	run --separate-stderr -2 jq-put --add --queue a,b --name x "$SERVER" <<<x
	[[ $stderr == *'a job is in one queue'* ]] || fail "$stderr"
	run --separate-stderr -2 jq-take --queue "$(seq -s, -f 'q%g' 33)" -o "$D/job" "$SERVER"
	[[ $stderr == *'more than 32 queues'* ]] || fail "$stderr"
	for bad in 1001 -1001 +1 1.5 x ''; do
		run --separate-stderr -2 jq-put --add --priority "$bad" --name x "$SERVER" <<<x
		[[ $stderr == *"is not a priority (a whole number from -1000 to 1000, higher first)"* ]] ||
			fail "--priority '$bad': $stderr"
	done
	run --separate-stderr -2 jq-put --priority 1 "$SERVER" 1:0 "$D/job"
	[[ $stderr == *'--priority needs --add'* ]] || fail "$stderr"
	run --separate-stderr -2 jq-put --queue a "$SERVER" 1:0 "$D/job"
	[[ $stderr == *'--queue needs --add'* ]] || fail "$stderr"
	# the server checks too, and the stream stays in step
	open_conn "$SERVER"
	sendl "$(hello_line 2 name=raw)"
	expect 'OK 2*'
	# a refused ADD's payload is read and dropped
	sendl 'ADD name=x size=0 queue=a%2Fb' 'END 0 00000000'
	expect 'ERR PROTO bad queue= *'
	sendl 'ADD name=x size=0 priority=1001' 'END 0 00000000'
	expect 'ERR PROTO priority= must be -1000 to 1000*'
	sendl 'TAKE queue=a,,b'
	expect 'ERR PROTO bad queue= *'
	sendl 'TAKE queue=a wait=0'
	expect 'NOJOB *'
	# nothing was added, and no queue was made
	run -0 jq-stat --json "$SERVER"
	json_file_check <(echo "$output") 'j["jobs"]["total"] == 0' 'list(j["queues"]) == ["default"]'
}

@test "queues: the cap on queues (1024, the default one included) refuses the next with ERR FULL" {
	start_server -o "$D/out"
	open_conn "$SERVER"
	sendl "$(hello_line 2 name=many)"
	expect 'OK 2*'
	local i
	# ADDs of size 0 pipelined: 1023 queues besides the default one
	for ((i = 1; i <= 1023; i++)); do
		printf 'ADD name=j%d size=0 queue=q%d\nEND 0 00000000\n' "$i" "$i"
	done >&"$conn"
	for ((i = 1; i <= 1023; i++)); do
		expect "OK $i" || fail "ADD $i"
	done
	sendl 'ADD name=more size=0 queue=one-more' 'END 0 00000000'
	expect 'ERR FULL too many queues: at most 1024*'
	sendl 'ADD name=more size=0 queue=q7' 'END 0 00000000'
	expect 'OK 1024'
}

@test "queues: jq-stat shows per-queue counts, --list --queue filters, --json carries queue and priority" {
	printf 'f1\n' >"$D/in/f1"
	start_server -v -o "$D/out" "$D/in/f1"
	add gpu 3 g1
	add gpu 0 g2
	add cpu -1 c1
	run -0 take_order 1 --queue gpu
	assert_output g1
	run -0 jq-stat "$SERVER"
	assert_output --partial 'queues   3'
	assert_output --regexp $'\n  default  1 total, 1 waiting, 0 running, 0 done, 0 failed\n'
	assert_output --regexp $'\n  gpu  2 total, 1 waiting, 1 running, 0 done, 0 failed\n'
	assert_output --regexp $'\n  cpu  1 total, 1 waiting, 0 running, 0 done, 0 failed\n'
	run -0 jq-stat --list --queue gpu "$SERVER"
	assert_output --partial ' g1'
	assert_output --partial ' g2'
	refute_output --partial ' c1'
	refute_output --partial 'f1'
	jq-stat --json --list "$SERVER" >"$D/stat.json"
	json_file_check "$D/stat.json" \
		'j["queues"] == {"default": {"total": 1, "waiting": 1, "running": 0, "done": 0, "failed": 0, "blocked": 0}, "gpu": {"total": 2, "waiting": 1, "running": 1, "done": 0, "failed": 0, "blocked": 0}, "cpu": {"total": 1, "waiting": 1, "running": 0, "done": 0, "failed": 0, "blocked": 0}}' \
		'[(r["id"], r["queue"], r["priority"], r["state"]) for r in j["list"]] == [("1", "default", 0, "waiting"), ("2", "gpu", 3, "running"), ("3", "gpu", 0, "waiting"), ("4", "cpu", -1, "waiting")]'
	python3 tests/schema/check.py validate tests/schema/jq-stat-1.json "$D/stat.json" >/dev/null ||
		python3 "$BATS_TEST_DIRNAME/schema/check.py" validate "$BATS_TEST_DIRNAME/schema/jq-stat-1.json" "$D/stat.json" >/dev/null
}

@test "queues: jq-take --queue on a terminal says which queues it waits for, while other queues have work; exit 3 once none can come" {
	local cmd i
	printf 'f\n' >"$D/in/f1"
	start_server --linger 60 -o "$D/out" "$D/in/f1"
	add a 0 a1
	add b 0 b1
	run -0 take_order 1 --queue a
	assert_output a1
	# a's only job runs elsewhere; b and the default queue have work, which is not a's
	cmd=$(printf '%q ' jq-take -o "$D/job2" --queue a "$SERVER")
	timeout -k 5 120 script -qefc "$cmd; echo \"rc=\$?\"" "$D/tty" </dev/null >/dev/null 2>&1 3>&- &
	JQ_PIDS+=("$!")
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		grep -q "waiting for a job of queue a: none waits there now" "$D/tty" 2>/dev/null && break
		sleep 0.05
	done
	grep -q "waiting for a job of queue a: none waits there now; one comes when a job is added there, or when a running one comes back" "$D/tty"
	# (the script header holds 'rc=$?': a status is a line of its own)
	grep -q "^rc=" "$D/tty" && fail "jq-take --queue a did not wait: $(cat "$D/tty")"
	jq-put "$SERVER" "$(<"$D/handle-a1")" "$D/job"
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		grep -q "^rc=" "$D/tty" 2>/dev/null && break
		sleep 0.05
	done
	grep -q "^rc=3" "$D/tty" || fail "jq-take --queue a: $(cat "$D/tty")"
	# the other queues' jobs were never its business
	run -0 take_order 1 --queue b
	assert_output b1
}
