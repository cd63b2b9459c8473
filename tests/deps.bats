#!/usr/bin/env bats
# tests/deps.bats: job dependencies (issue 11): jq-put --add --after and --before, the BLOCKED
# state, a failed prerequisite failing its dependents, cycles refused, EX_TEMPFAIL (exit 75) from
# a running job that added its own prerequisites (the DepQueue pattern of jq-put(1)), and the
# dependencies surviving kill -9 of the server (A records' after=, E records).
#
# Nothing here depends on timing: order is checked through --joblog start and end times, waits
# are bounded loops on files, states or exits.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
	mkdir -p "$D/out"
}

# serve_pid: the jq-serve process itself (SERVER_PID is its watchdog's)
serve_pid() {
	pgrep -P "$SERVER_PID" -x jq-serve
}

# journal: the journal in $JQ_STATE_DIR
journal() {
	local f=("$JQ_STATE_DIR"/journal-*)
	[[ -f ${f[0]} ]] || fail "no journal in $JQ_STATE_DIR"
	echo "${f[0]}"
}

# stat_is EXPR...: jq-stat --json --list of $SERVER satisfies each python EXPR (j is the document)
stat_is() {
	jq-stat --json --list "$SERVER" >"$D/stat.json"
	json_file_check "$D/stat.json" "$@"
}

# state_of ID: the job's state word, from jq-stat --json --list
state_of() {
	jq-stat --json --list "$SERVER" | python3 -c '
import json, sys
for x in json.load(sys.stdin)["list"]:
    if x["id"] == sys.argv[1]:
        print(x["state"])' "$1"
}

# wait_state ID STATE: wait (bounded) until job ID is in STATE
wait_state() {
	local i s
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		s=$(state_of "$1")
		[[ $s == "$2" ]] && return 0
		sleep 0.05
	done
	fail "job $1 is $s, not $2, after ${JQ_WAIT}s"
}

@test "deps: an --after chain runs in order across two workers (joblog times), and blocked jobs show their prerequisites" {
	start_server -v --keep -o "$D/out" --joblog "$D/joblog"
	run -0 jq-put --add "$SERVER" --name first <<<'1'
	assert_output 1
	run -0 jq-put --add --after 1 "$SERVER" --name second <<<'2'
	assert_output 2
	run -0 jq-put --add --after 2,1 "$SERVER" --name third <<<'3'
	assert_output 3
	run -0 jq-put --add --after 1 --after 3 "$SERVER" --name fourth <<<'4'
	assert_output 4
	stat_is 'j["jobs"]["blocked"] == 3' 'j["jobs"]["waiting"] == 1' \
		'[x["state"] for x in j["list"]] == ["waiting", "blocked", "blocked", "blocked"]' \
		'j["list"][1]["after"] == ["1"]' 'j["list"][2]["after"] == ["2", "1"]' \
		'j["list"][0]["after"] is None'
	run -0 jq-stat --list --state blocked "$SERVER"
	assert_line --partial second
	refute_line --partial first
	# the commands sleep a little, so that a job run too early would overlap its prerequisite
	jq_bg jq-run -j1 --tmpdir "$TMPD" "$SERVER" -- sh -c 'sleep 0.2; tr 0-9 a-j'
	jq_bg jq-run -j1 --tmpdir "$TMPD" "$SERVER" -- sh -c 'sleep 0.2; tr 0-9 a-j'
	wait_state 4 'done'
	assert_equal "$(cat "$D/out/fourth.result")" e
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	# each job started after its prerequisites ended
	python3 - "$D/joblog" <<-'EOF'
		import sys
		rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
		t = {r[1]: (float(r[3]), float(r[3]) + float(r[4])) for r in rows if r[6] == "0"}
		for job, pre in [("second", "first"), ("third", "second"), ("third", "first"),
		                 ("fourth", "third"), ("fourth", "first")]:
		    assert t[job][0] >= t[pre][1] - 0.002, (job, pre, t)   # 3 decimals, rounded
	EOF
}

@test "deps: a prerequisite that fails for good fails its dependents, status dependency, in a cascade; --after a failed or unknown job is refused" {
	start_server -v --keep -o "$D/out"
	run -0 jq-put --add "$SERVER" --name bad <<<'x'
	run -0 jq-put --add --after 1 "$SERVER" --name child <<<'y'
	run -0 jq-put --add --after 2 "$SERVER" --name grandchild <<<'z'
	run -0 jq-put --add "$SERVER" --name other <<<'w'
	run -1 jq-run --max-jobs 1 --tmpdir "$TMPD" "$SERVER" -- sh -c 'echo broken >&2; exit 3'
	wait_state 3 failed
	stat_is 'j["jobs"]["failed"] == 3' 'j["jobs"]["blocked"] == 0' 'j["jobs"]["waiting"] == 1' \
		'j["list"][1]["failure"]["status"] == "dependency"' \
		'"prerequisite job 1 bad failed (exit:3)" in j["list"][1]["failure"]["message"]' \
		'"prerequisite job 2 child failed (dependency)" in j["list"][2]["failure"]["message"]'
	# --wait tells the reason
	run -1 --separate-stderr jq-put --wait "$SERVER" 3
	assert [ -n "$(grep -F 'dependency' <<<"$stderr")" ]
	# after a failed job: refused, nothing added
	run -4 jq-put --add --after 1 "$SERVER" --name late <<<'l'
	assert_output --partial 'has failed'
	run -4 jq-put --add --after 99 "$SERVER" --name late <<<'l'
	assert_output --partial 'no such job'
	run -4 jq-put --add --after x1 "$SERVER" --name late <<<'l'
	assert_output --partial 'no job named "x1"'
	run -2 jq-put --add --after 1,,2 "$SERVER" --name late <<<'l'
	stat_is 'j["jobs"]["total"] == 4'
	# a dependent cannot run again while its prerequisite stays failed; once that one may, it may
	run -4 jq-put --retry "$SERVER" 2
	assert_output --partial 'prerequisite job 1 has failed'
	run -0 jq-put --retry "$SERVER" 1
	run -0 jq-put --retry "$SERVER" 2
	wait_state 2 blocked
	run -0 jq-put --cancel "$SERVER" 1
	wait_state 2 failed
	# cancelling a blocked job cascades too
	run -0 jq-put --add --after 4 "$SERVER" --name c1 <<<'1'
	assert_output 5
	run -0 jq-put --add --after 5 "$SERVER" --name c2 <<<'2'
	run -0 jq-put --cancel "$SERVER" 5
	wait_state 6 failed
	stat_is 'j["list"][5]["failure"]["status"] == "dependency"'
}

@test "deps: a cycle through --before is refused and nothing is added; --before a finished job is refused" {
	start_server -v --keep -o "$D/out"
	run -0 jq-put --add "$SERVER" --name a <<<'a'
	run -0 jq-put --add --after 1 "$SERVER" --name b <<<'b'
	# c after b, before a: a -> c -> b -> a
	run -4 jq-put --add --after 2 --before 1 "$SERVER" --name c <<<'c'
	assert_output --partial 'CYCLE'
	run -4 jq-put --add --after 1 --before 1 "$SERVER" --name c <<<'c'
	assert_output --partial 'CYCLE'
	stat_is 'j["jobs"]["total"] == 2'
	# before a waiting job: it becomes blocked at once; the new job runs first
	run -0 jq-put --add --before 1 "$SERVER" --name pre <<<'p'
	assert_output 3
	wait_state 1 blocked
	run -0 jq-run --max-jobs 3 --tmpdir "$TMPD" "$SERVER" -- cat
	wait_state 2 'done'
	run -4 jq-put --add --before 1 "$SERVER" --name late <<<'l'
	assert_output --partial 'has a result'
	grep -q '^E 1 3 ' "$(journal)"
}

@test "deps: the EX_TEMPFAIL pattern of jq-put(1): a running job adds its prerequisite with --before \"\$JQ_JOB_ID\" and exits 75" {
	start_server -v --keep -o "$D/out" --joblog "$D/joblog"
	# the example of jq-put(1), EXAMPLES, word for word but for the paths
	cat >"$D/top.sh" <<-'EOF'
		#!/bin/sh
		# the job "top" needs "part" done first
		if [ ! -e "$M/part.done" ]; then
			echo part | jq-put --add --before "$JQ_JOB_ID" --name part >/dev/null || exit 1
			exit 75
		fi
		cat "$M/part.done"
	EOF
	chmod +x "$D/top.sh"
	run -0 jq-put --add "$SERVER" --name top <<<'top'
	jq_bg jq-run -j1 --tmpdir "$TMPD" "$SERVER" -- sh -c \
		'if [ "$JQ_JOB_NAME" = part ]; then echo made >"$M/part.done"; cat; else "$0"; fi' "$D/top.sh"
	local run_pid=$!
	wait_state 1 'done'
	assert_equal "$(cat "$D/out/top.result")" made
	stat_is 'j["jobs"]["done"] == 2' 'j["list"][0]["attempts"] == 2' 'j["list"][0]["failure"] is None'
	# top's first attempt ended exit:75 before part started; its second started after part ended
	python3 - "$D/joblog" <<-'EOF'
		import sys
		rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
		top = [r for r in rows if r[1] == "top"]
		part = [r for r in rows if r[1] == "part"]
		assert [r[6] for r in top] == ["exit:75", "0"], top
		assert float(top[1][3]) >= float(part[0][3]) + float(part[0][4]) - 0.002, rows
	EOF
	grep -qF 'it waits for 1 prerequisite' "$SERVER_LOG"
	# exit 75 is no failure of jq-run's: it exits 0, and says what ran again
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	wait_pid "$run_pid" 30
	assert_equal "$status" 0
}

@test "deps: EX_TEMPFAIL with no prerequisite waits 0.5 s, 1 s, 2 s; the fourth in a row is an ordinary failure" {
	start_server -v --keep -o "$D/out" --retries 0
	run -0 jq-put --add "$SERVER" --name flaky <<<'f'
	# jq-run counts no exit 75 as its failure (the server decides which one is)
	run -0 jq-run --max-jobs 4 --tmpdir "$TMPD" "$SERVER" -- sh -c 'exit 75'
	assert_output --partial '4 attempts run: 0 done, 0 failed, 4 to run again (exit 75)'
	wait_state 1 failed
	stat_is 'j["list"][0]["attempts"] == 4' 'j["list"][0]["failure"]["status"] == "exit 75"'
	grep -qF 'temporary failure 3 of 3 in a row' "$SERVER_LOG"
	# jq-put --fail --tempfail says the same as jq-run does
	run -0 jq-put --add "$SERVER" --name manual <<<'m'
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 2
	run -0 jq-put --fail --tempfail "$SERVER" "$HANDLE"
	wait_state 2 waiting
	grep -qF 'job 2 manual: temporary failure 1 of 3' "$SERVER_LOG"
}

@test "deps: kill -9 with a blocked job and an E edge; after the restart the dependencies hold and the run completes in order, nothing lost or run twice" {
	start_server -v --keep -o "$D/out" --joblog "$D/joblog"
	run -0 jq-put --add "$SERVER" --name a <<<'a'
	run -0 jq-put --add --after 1 "$SERVER" --name b <<<'b'
	run -0 jq-put --add "$SERVER" --name c <<<'c'
	# d runs before c (an E record), after a (after= in its A record)
	run -0 jq-put --add --after 1 --before 3 "$SERVER" --name d <<<'d'
	assert_output 4
	grep -q '^A 2 b .* after=1 ' "$(journal)"
	grep -q '^E 3 4 ' "$(journal)"
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	start_server -v --keep -o "$D/out" --joblog "$D/joblog"
	stat_is 'j["jobs"]["total"] == 4' 'j["jobs"]["waiting"] == 1' 'j["jobs"]["blocked"] == 3' \
		'j["list"][2]["after"] == ["4"]' 'j["list"][3]["after"] == ["1"]'
	# kill -9 again after compaction: the edges are still there
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	start_server -v --keep -o "$D/out" --joblog "$D/joblog"
	stat_is 'j["jobs"]["blocked"] == 3'
	jq_bg jq-run -j1 --tmpdir "$TMPD" "$SERVER" -- sh -c 'sleep 0.1; cat'
	jq_bg jq-run -j1 --tmpdir "$TMPD" "$SERVER" -- sh -c 'sleep 0.1; cat'
	wait_state 3 'done'
	wait_state 2 'done'
	stat_is 'j["jobs"]["done"] == 4'
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	python3 - "$D/joblog" <<-'EOF'
		import sys
		rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
		names = [r[1] for r in rows]
		assert sorted(names) == ["a", "b", "c", "d"], rows   # each ran once
		t = {r[1]: (float(r[3]), float(r[3]) + float(r[4])) for r in rows}
		for job, pre in [("b", "a"), ("d", "a"), ("c", "d")]:
		    assert t[job][0] >= t[pre][1] - 0.002, (job, pre, t)   # 3 decimals, rounded
	EOF
}

@test "deps: share/examples/pipeline.sh splits, processes and joins across two workers, in order" {
	local ex=$BATS_TEST_DIRNAME/../share/examples/pipeline.sh
	start_server -v --keep -o "$D/out" --joblog "$D/joblog"
	seq 1 100 | sed 's/^/line /' >"$D/in.txt"
	jq_bg jq-run -j1 --worker one --tmpdir "$TMPD" "$SERVER" -- "$ex" work '<name>' '<in>'
	jq_bg jq-run -j1 --worker two --tmpdir "$TMPD" "$SERVER" -- "$ex" work '<name>' '<in>'
	run -0 --separate-stderr "$ex" submit "$SERVER" "$D/in.txt" 3
	assert_equal "$output" "$(tr '[:lower:]' '[:upper:]' <"$D/in.txt")"
	stat_is 'j["jobs"]["total"] == 5' 'j["jobs"]["done"] == 5'
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	# split, then the three parts, then join: each started after what it runs after ended
	python3 - "$D/joblog" <<-'EOF'
		import sys
		rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
		t = {r[1].split("-")[0] + r[1][-2:]: (float(r[3]), float(r[3]) + float(r[4])) for r in rows}
		parts = [k for k in t if k.startswith("part")]
		split = [k for k in t if k.startswith("split")][0]
		join = [k for k in t if k.startswith("join")][0]
		assert len(parts) == 3 and len(rows) == 5, rows
		for p in parts:
		    assert t[p][0] >= t[split][1] - 0.002, (p, t)
		    assert t[join][0] >= t[p][1] - 0.002, (p, t)
	EOF
}

@test "deps: --after and --before take job names as well as ids and handles" {
	start_server -v --keep -o "$D/out"
	run -0 jq-put --add "$SERVER" --name 'a,b c' <<<'1'
	run -0 jq-put --add "$SERVER" --name 7 <<<'2'
	run -0 jq-put --add "$SERVER" --name third <<<'3'
	# "a,b c" has a comma: by id; "7" is id 7 to jq-put, not a name
	run -0 jq-put --add --after 1,third "$SERVER" --name four <<<'4'
	assert_output 4
	run -0 jq-put --add --before four "$SERVER" --name five <<<'5'
	assert_output 5
	stat_is 'j["list"][3]["state"] == "blocked"' 'j["list"][3]["after"] == ["1", "3", "5"]'
	run -4 jq-put --add --after nosuch "$SERVER" --name six <<<'6'
	assert_output --partial 'no job named "nosuch"'
	run -0 jq-put --add --after 1 --before third "$SERVER" --name six <<<'6'
	assert_output 6
	# third waits for six now; four waits for third: seven after four, before six closes a cycle
	run -4 jq-put --add --after four --before six "$SERVER" --name seven <<<'7'
	assert_output --partial CYCLE
	stat_is 'j["jobs"]["total"] == 6' 'j["list"][2]["after"] == ["6"]'
}
