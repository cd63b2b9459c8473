#!/usr/bin/env bats
# tests/stat-list.bats: jq-stat --list (issue 11, "See"): the jobs one by one with their detail,
# filtered by state, queue and name; the pages of JOBS behind it; names that must not reach a
# terminal raw; the per-queue counts; and the versioned JSON, checked field by field and against
# its checked-in schema (tests/schema/, tests/schema/check.py), so that a field that changes
# without a new version fails here.

# shellcheck disable=SC2154 # $line is set by recv (test_helper/wire.bash), $output by bats' run
# shellcheck disable=SC2034 # $greeting is read by hello_line (test_helper/common.bash)

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup
	SCHEMA_DIR=$BATS_TEST_DIRNAME/schema
	CHECK=$SCHEMA_DIR/check.py
}

# open_worker NAME: connect fd $conn to $SERVER and say HELLO as worker NAME (already encoded)
open_worker() {
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	greeting=$line
	sendl "$(hello_line 2 "name=$1")"
	expect 'OK 2*'
}

# fixture: six jobs $D/in/file000N.dat: 1 done by w-done; 2 failed with exit 3 by w-fail (its
# message two lines); 3 failed by signal 9 and 4 running, both taken on the connection $conn by
# w-conn (a worker while it stays open); 5 and 6 waiting, never taken
fixture() {
	make_files "$D/in" 6
	start_server "$D"/in/*.dat
	run -0 jq-take --worker w-done -o "$D/job" "$SERVER"
	assert_handle 1
	run -0 jq-put "$SERVER" "$HANDLE" "$D/job"
	run -0 jq-take --worker w-fail -o "$D/job" "$SERVER"
	assert_handle 2
	run -0 jq-put --fail -x 3 -m $'first line\nlast line\n' "$SERVER" "$HANDLE"
	open_worker w-conn
	take_token hold=conn
	assert_equal "$job" 3
	sendl "FAIL 3 token=$token signal=9"
	payload 'killed' >&"$conn"
	expect 'OK 3 *'
	take_token hold=conn
	assert_equal "$job" 4
}

# ids_of: the ids of the job rows in $output (the lines after the header that begin with an id)
ids_of() {
	printf '%s\n' "$output" | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { printf "%s ", $1 }'
}

@test "jq-stat --list: a line per job with state, attempts, worker, times, duration, failure, name" {
	fixture
	TZ=UTC run -0 jq-stat --list "$SERVER"
	local t='[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}' in="$D/in/file000"
	assert_equal "${#lines[@]}" 9
	assert_line --index 0 --regexp '^ID +STATE +ATTEMPTS +WORKER +STARTED +ENDED +DURATION +STATUS +NAME$'
	assert_line --index 1 --regexp "^ 1  done +1  w-done  $t  $t +[0-9]+\\.[0-9]s  - +/"
	assert_line --index 2 --regexp "^ 2  failed +1  w-fail  $t  $t +[0-9]+\\.[0-9]s  exit 3 +/"
	assert_line --index 3 --regexp '^ +last line$'
	assert_line --index 4 --regexp "^ 3  failed +1  w-conn  $t  $t +[0-9]+\\.[0-9]s  signal 9  /"
	assert_line --index 5 --regexp '^ +killed$'
	assert_line --index 6 --regexp "^ 4  running +1  w-conn  $t  - +[0-9]+\\.[0-9]s  - +/"
	assert_line --index 7 --regexp '^ 5  waiting +0  - +- +- +- +- +/'
	assert_line --index 8 --regexp '^ 6  waiting +0  - +- +- +- +- +/'
	refute_output --partial 'first line'
	# the names, whole, in the last column, which begins where NAME does on every job line
	local i col=${lines[0]%%NAME}
	for i in 1 2 4 6 7 8; do
		[[ ${lines[i]} == *" $in"?.dat ]] || fail "line $i: '${lines[i]}' does not end in the name"
		assert_equal "${#col}" "$((${#lines[i]} - ${#in} - 5))"
	done
	# the times are the JSON ones, in local time (here UTC) without the year and milliseconds
	jq-stat --json --list "$SERVER" >"$D/list.json"
	started=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["list"][0]["started"])' "$D/list.json")
	[[ ${lines[1]} == *"  ${started:5:5} ${started:11:8}  "* ]] || fail "no ${started:5:14} in '${lines[1]}'"
}

@test "jq-stat --list --json: every job checked field by field" {
	fixture
	jq-stat --json --list "$SERVER" >"$D/list.json"
	IN=$D/in python3 - "$D/list.json" <<'EOF'
import datetime, json, os, sys
j = json.load(open(sys.argv[1], encoding="utf-8"))
d = os.environ["IN"]

def iso(s):
    assert s.endswith("Z") and len(s) == 24, s
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")

def ms(a, b):
    return round((iso(b) - iso(a)).total_seconds() * 1000)

assert j["schema"] == "jq-stat/1", j["schema"]
assert j["jobs"] == {"total": 6, "waiting": 2, "running": 1, "done": 1, "failed": 2, "blocked": 0}, j["jobs"]
assert j["queues"] == {"default": j["jobs"]}, j["queues"]
L = j["list"]
assert [x["id"] for x in L] == ["1", "2", "3", "4", "5", "6"], L
for i, x in enumerate(L, 1):
    assert x["name"] == "%s/file%04d.dat" % (d, i), x
    assert x["queue"] == "default", x
assert [x["state"] for x in L] == ["done", "failed", "failed", "running", "waiting", "waiting"]
assert [x["attempts"] for x in L] == [1, 1, 1, 1, 0, 0]
assert [x["worker"] for x in L] == ["w-done", "w-fail", "w-conn", "w-conn", None, None]
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
for x in L[:3]:
    # ended = started + duration, to the millisecond; all within the last minute or so
    assert ms(x["started"], x["ended"]) == x["duration_ms"] >= 0, x
    assert abs((now - iso(x["started"])).total_seconds()) < 600, x
assert L[3]["ended"] is None and isinstance(L[3]["duration_ms"], int), L[3]
for x in L[4:]:
    assert (x["started"], x["ended"], x["duration_ms"], x["failure"]) == (None,) * 4, x
assert L[0]["failure"] is None and L[3]["failure"] is None
assert L[1]["failure"] == {"status": "exit 3", "exit": 3, "signal": None,
                           "message": "first line\nlast line\n"}, L[1]
assert L[2]["failure"] == {"status": "signal 9", "exit": None, "signal": 9,
                           "message": "killed"}, L[2]
# the counts part is the same as without --list
assert [f["id"] for f in j["failed"]] == ["2", "3"], j["failed"]
assert [w["name"] for w in j["workers"]] == ["w-conn"], j["workers"]
EOF
}

@test "jq-stat --state, --match and --queue choose the jobs listed, and imply --list" {
	fixture
	run -0 jq-stat --state failed "$SERVER"
	assert_equal "$(ids_of)" "2 3 "
	assert_line --regexp '^ +last line$'
	run -0 jq-stat --state waiting,running "$SERVER"
	assert_equal "$(ids_of)" "4 5 6 "
	run -0 jq-stat --state done,failed,done "$SERVER"
	assert_equal "$(ids_of)" "1 2 3 "
	run -0 jq-stat --match '*/file000[15].dat' "$SERVER"
	assert_equal "$(ids_of)" "1 5 "
	run -0 jq-stat --state failed --match '*2.dat' "$SERVER"
	assert_equal "$(ids_of)" "2 "
	run -0 jq-stat --queue default "$SERVER"
	assert_equal "$(ids_of)" "1 2 3 4 5 6 "
	# no other queue yet: its list is the header alone
	run -0 jq-stat --queue other "$SERVER"
	assert_equal "${#lines[@]}" 1
	assert_line --index 0 --regexp '^ID +STATE'
	run -0 jq-stat --state running --match '*.wav' "$SERVER"
	assert_equal "${#lines[@]}" 1
	jq-stat -j --state failed --match '*/file*' "$SERVER" >"$D/f.json"
	json_file_check "$D/f.json" '[x["id"] for x in j["list"]] == ["2", "3"]' \
		'j["jobs"]["total"] == 6'
	jq-stat -j --queue other "$SERVER" >"$D/q.json"
	json_file_check "$D/q.json" 'j["list"] == []'
}

@test "jq-stat: the per-queue counts, in text and JSON" {
	fixture
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^queues +1$'
	assert_line --regexp '^  default  6 total, 2 waiting, 1 running, 1 done, 2 failed$'
	jq-stat -j "$SERVER" >"$D/c.json"
	json_file_check "$D/c.json" \
		'j["queues"] == {"default": {"total": 6, "waiting": 2, "running": 1, "done": 1, "failed": 2, "blocked": 0}}' \
		'"list" not in j'
}

@test "jq-stat --list: a job failed by jq-run shows its exit status and the last line of its stderr" {
	jq_setup worker
	make_files "$D/in" 3
	start_server "$D"/in/*.dat
	run -1 jq-run -j 1 --max-jobs 2 --tmpdir "$TMPD" --worker node1 "$SERVER" -- \
		sh -c 'printf "noise\nlame: not a WAV file\n" >&2; exit 3'
	run -0 jq-stat --state failed "$SERVER"
	assert_equal "$(ids_of)" "1 2 "
	assert_line --index 1 --regexp '^ 1  failed +1  node1  .*  exit 3  .*/file0001\.dat$'
	assert_line --index 2 --regexp '^ +lame: not a WAV file$'
	jq-stat -j --state failed "$SERVER" >"$D/f.json"
	json_file_check "$D/f.json" \
		'j["list"][0]["failure"]["exit"] == 3' \
		'j["list"][0]["failure"]["signal"] is None' \
		'j["list"][0]["failure"]["message"].startswith("noise\nlame: not a WAV file\n")' \
		'j["list"][0]["worker"] == "node1"'
}

@test "jq-stat --list: hostile names, workers and messages reach the terminal escaped, JSON exact" {
	mkdir "$D/odd"
	local -a names=($'new\nline' $'esc\e[31mred\e[0m' $'csi\xc2\x9b2J' $'bidi\xe2\x80\xaeevil'
		$'bell\a\rcr' $'tab\there' $'back\\slash' 'caf'$'\xc3\xa9')
	local n
	for n in "${names[@]}"; do
		printf 'x\n' >"$D/odd/$n"
	done
	printf 'y\n' >"$D/odd/"$'not-utf8\xff'
	start_server "$D/odd/"*
	run -0 jq-take --worker $'evil\e]0;pwned\a' -o "$D/job" "$SERVER"
	run -0 jq-put --fail -x 1 -m $'boom \e[2J\xc2\x9b\xe2\x81\xa6 done' "$SERVER" "$output"
	jq-stat --list "$SERVER" >"$D/out.txt"
	jq-stat --json --list "$SERVER" >"$D/out.json"
	printf '%s\0' "$D/odd/"* >"$D/names"
	python3 - "$D/out.txt" "$D/out.json" "$D/names" <<'EOF'
import json, sys
text = open(sys.argv[1], "rb").read()
raw = open(sys.argv[2], "rb").read()
names = open(sys.argv[3], "rb").read().split(b"\0")[:-1]
for out, what in ((text, "text"), (raw, "JSON")):
    for bad in (b"\x1b", b"\x07", b"\r", b"\xc2\x9b", b"\xe2\x80\xae", b"\xe2\x81\xa6", b"\xff"):
        assert bad not in out, "%s output holds %r" % (what, bad)
    assert not any(b < 0x20 and b != 0x0a for b in out), what
lines = text.decode("utf-8").split("\n")
# a header, a line per job (nine), the failed job's message line, the final newline
assert len(lines) == 1 + 9 + 1 + 1, lines
assert lines[-1] == "", lines
for want in ("new\\nline", "esc\\x1b[31mred\\x1b[0m", "csi\\xc2\\x9b2J", "bidi\\xe2\\x80\\xaeevil",
             "bell\\x07\\x0dcr", "tab\\there", "back\\\\slash", "caf\u00e9", "not-utf8\\xff",
             "evil\\x1b]0;pwned\\x07"):
    assert any(want in l for l in lines), (want, lines)
assert any(l.strip() == "boom \\x1b[2J\\xc2\\x9b\\xe2\\x81\\xa6 done" for l in lines), lines
j = json.loads(raw)
got = [x["name"].encode("utf-8") for x in j["list"]]
# every name exact, but the one that is not UTF-8: its byte reads as U+00FF
want = [n if not n.endswith(b"\xff") else n[:-1] + b"\xc3\xbf" for n in names]
assert sorted(got) == sorted(want), (got, want)
f = [x for x in j["list"] if x["failure"]][0]
assert f["worker"] == "evil\x1b]0;pwned\x07", f
assert f["failure"]["message"] == "boom \x1b[2J\u009b\u2066 done", f
EOF
}

@test "JOBS pages: at most 1000 lines a reply, END next= until the last page; jq-stat lists all" {
	mkdir -p "$D/in"
	cd "$D/in"
	seq -f 'f%04g' 1 1500 | xargs touch
	# short names (relative), so that 1000 lines come to less than 64 KiB
	start_server f*
	open_worker pager
	sendl 'JOBS'
	n=0
	while recv && [[ $line == JOBINFO* ]]; do
		n=$((n + 1))
	done
	assert_equal "$n" 1000
	assert_equal "$line" 'END next=1000'
	# a larger limit= is the cap
	sendl 'JOBS limit=5000 after=1000'
	n=0
	while recv && [[ $line == JOBINFO* ]]; do
		[[ $line == "JOBINFO $((1001 + n)) "* ]] || fail "out of order: $line"
		n=$((n + 1))
	done
	assert_equal "$n" 500
	assert_equal "$line" 'END'
	sendl 'JOBS limit=7 after=1495'
	n=0
	while recv && [[ $line == JOBINFO* ]]; do n=$((n + 1)); done
	assert_equal "$n" 5
	assert_equal "$line" 'END'
	run -0 jq-stat --list "$SERVER"
	assert_equal "${#lines[@]}" 1501
	assert_equal "$(ids_of | tr ' ' '\n' | grep -c .)" 1500
	[[ $(ids_of) == "$(seq -s ' ' 1 1500) " ]] || fail "ids not 1 to 1500 in order"
	jq-stat --json --list "$SERVER" >"$D/all.json"
	json_file_check "$D/all.json" '[x["id"] for x in j["list"]] == [str(i) for i in range(1, 1501)]'
}

@test "JOBS pages: a reply stops at about 64 KiB of lines; jq-stat pages through long names" {
	local dir
	dir=$D/in/$(printf 'd%.0s' {1..200})
	mkdir -p "$dir"
	(cd "$dir" && seq -f 'name-%04g' 1 1200 | xargs touch)
	start_server "$dir"/*
	open_worker pager
	sendl 'JOBS'
	n=0 bytes=0
	while recv && [[ $line == JOBINFO* ]]; do
		n=$((n + 1))
		bytes=$((bytes + ${#line} + 1))
	done
	((n > 0 && n < 1000)) || fail "$n lines in the first page"
	assert_equal "$line" "END next=$n"
	((bytes >= 65536 && bytes < 65536 + 16384)) || fail "$bytes bytes in the first page"
	run -0 jq-stat --list "$SERVER"
	[[ $(ids_of) == "$(seq -s ' ' 1 1200) " ]] || fail "ids not 1 to 1200 in order"
}

@test "JOBS pages: a reply looks at 16384 jobs at most, even when none of them is listed" {
	mkdir -p "$D/in"
	(cd "$D/in" && seq -f 'f%05g' 1 16500 | xargs touch)
	start_server "$D"/in/*
	open_worker pager
	sendl 'JOBS state=done'
	expect 'END next=16384'
	sendl 'JOBS state=done after=16384'
	expect 'END'
	sendl 'JOBS match=*f16500'
	expect 'END next=16384'
	sendl 'JOBS match=*f16500 after=16384'
	expect 'JOBINFO 16500 *'
	expect 'END'
	# jq-stat goes on through the empty pages
	run -0 jq-stat --match '*f1650?' "$SERVER"
	assert_equal "$(ids_of)" "16500 "
	run -0 jq-stat --state=done "$SERVER"
	assert_equal "${#lines[@]}" 1
}

# fake_old_server: a server that speaks protocol 2 without QUEUE lines and without JOBS, or (with
# FAKE_NEXT set) one whose JOBS reply says next=$FAKE_NEXT with an unknown line and key
fake_old_server() {
	local line
	echo 'JQ 2 fake/0 auth=none'
	while read -r line; do
		line=${line%$'\r'}
		case $line in
		HELLO*) echo 'OK 2' ;;
		STAT*)
			echo 'STAT total=3 waiting=1 running=1 done=1 failed=0 workers=0 failed_listed=0 version=0.0.9 protocol=2'
			echo 'FUTURE line=1'
			echo 'END'
			;;
		JOBS*)
			if [[ -n ${FAKE_NEXT:-} ]]; then
				echo 'JOBINFO 1 a queue=default state=done attempts=1 future=x'
				echo 'FUTURE line=2'
				echo "END next=$FAKE_NEXT"
			else
				echo 'ERR PROTO unknown command "JOBS"'
			fi
			;;
		*) echo 'ERR PROTO what' ;;
		esac
	done
}

# start_fake [VAR=VALUE]...: serve fake_old_server on unix:$FAKE, environment VARs added
start_fake() {
	jq_tmpdir
	FAKE=$JQ_TMP/fake.sock
	export -f fake_old_server
	jq_bg env "$@" socat "UNIX-LISTEN:$FAKE,fork" EXEC:'bash -c fake_old_server'
	local i
	for ((i = 0; i < 400; i++)); do
		[[ -S $FAKE ]] && break
		sleep 0.05
	done
}

@test "an older server: no QUEUE lines mean one default queue; no JOBS makes --list fail with 7" {
	start_fake
	run -0 jq-stat --no-auth "unix:$FAKE"
	assert_line --regexp '^queues +1$'
	assert_line --regexp '^  default  3 total, 1 waiting, 1 running, 1 done, 0 failed$'
	jq-stat --no-auth -j "unix:$FAKE" >"$D/old.json"
	json_file_check "$D/old.json" 'j["queues"] == {"default": j["jobs"]}' 'j["progress"] is None'
	run -7 jq-stat --no-auth --list "unix:$FAKE"
	assert_output --partial 'server refused to list jobs: PROTO unknown command'
}

@test "a server whose next page does not move on is refused (status 7), not followed for ever" {
	start_fake FAKE_NEXT=1
	run -7 jq-stat --no-auth --list "unix:$FAKE"
	assert_output --partial 'next page of jobs begins after job 1, not past job 1'
	# unknown lines and keys are skipped: the page was listed (twice, the second time asked
	# after job 1) before jq-stat gave up
	assert_line --index 1 --regexp '^ 1  done +1 '
	assert_line --index 2 --regexp '^ 1  done +1 '
}

@test "jq-stat: bad --state, --match and --queue values exit 2 without connecting" {
	run -2 jq-stat --state bogus unix:/nonexistent/sock
	assert_output --partial -- '--state: "bogus" is not a list of waiting, running, done, failed and blocked'
	run -2 jq-stat --state done, unix:/nonexistent/sock
	run -2 jq-stat --state '' unix:/nonexistent/sock
	run -2 jq-stat --match '' unix:/nonexistent/sock
	run -2 jq-stat --match "$(printf 'x%.0s' {1..1025})" unix:/nonexistent/sock
	assert_output --partial -- '--match: the pattern must have 1 to 1024 bytes'
	run -2 jq-stat --queue '' unix:/nonexistent/sock
	run -0 jq-stat --help
	for o in --list --state --match --queue; do
		assert_output --partial -- "$o"
	done
}

@test "jq-stat --watch --list lists the jobs again until the run ends" {
	make_files "$D/in" 2
	start_server --linger 30s "$D"/in/*.dat
	run -0 jq-take -o "$D/job" "$SERVER"
	run -0 jq-put "$SERVER" "$output" "$D/job"
	run -0 jq-take -o "$D/job" "$SERVER"
	run -0 jq-put --fail -m nope "$SERVER" "$output"
	# the run has ended: one answer, and status 0
	run -0 jq-stat --watch 0.1 --list "$SERVER"
	assert_equal "$(ids_of)" "1 2 "
	run -0 jq-stat --watch 0.1 -j --state failed "$SERVER"
	assert_equal "${#lines[@]}" 1
	json_file_check <(printf '%s\n' "$output") '[x["id"] for x in j["list"]] == ["2"]'
}

# schema_docs: the fixture's JSON documents, one per line, in $D/docs/: counts.json before any
# result came (rate and ETA null) and after, list.json with --list (and a blocked job's, whose
# after is a list: jq-put --add --after)
schema_docs() {
	mkdir -p "$D/docs" "$D/first"
	printf 'x\n' >"$D/first/job"
	start_server --state-dir "$D/state0" "$D/first/job"
	jq-stat --json "$SERVER" >"$D/docs/counts.json"
	jq-put --add --after 1 --name blocked "$SERVER" <<<'b' >/dev/null
	jq-stat --json --list "$SERVER" >"$D/docs/blocked.json"
	stop_server
	fixture
	jq-stat --json "$SERVER" >>"$D/docs/counts.json"
	jq-stat --json --list "$SERVER" >"$D/docs/list.json"
}

@test "schema: jq-stat --json, with and without --list, matches its version's schema key by key" {
	schema_docs
	local version
	version=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["schema"])' \
		"$D/docs/counts.json")
	# the schema file is named by the version the output claims
	[[ -f $SCHEMA_DIR/${version/\//-}.json ]] || fail "no tests/schema/${version/\//-}.json for \"$version\""
	run -0 python3 "$CHECK" validate "$SCHEMA_DIR/${version/\//-}.json" \
		"$D/docs/counts.json" "$D/docs/list.json" "$D/docs/blocked.json"
	# every type the schema allows was seen, but a null progress (a server older than elapsed_ms)
	assert_output '$.progress: null'
	json_file_check "$D/docs/list.json" '"list" in j'
	json_file_check <(head -n 1 "$D/docs/counts.json") '"list" not in j'
}

@test "schema: the check fails when a field is added, removed, renamed or retyped" {
	schema_docs
	local s=$SCHEMA_DIR/jq-stat-1.json d=$D/docs/list.json
	run -0 python3 "$CHECK" validate "$s" "$d"
	python3 - "$d" "$D" <<'EOF'
import json, sys
doc = json.loads(open(sys.argv[1]).read())
d = sys.argv[2]
def write(name, j):
    open("%s/%s.json" % (d, name), "w").write(json.dumps(j) + "\n")
j = json.loads(json.dumps(doc)); j["list"][0]["extra"] = 1; write("added", j)
j = json.loads(json.dumps(doc)); del j["list"][0]["worker"]; write("removed", j)
j = json.loads(json.dumps(doc)); j["queues"]["default"]["all"] = j["queues"]["default"].pop("total"); write("renamed", j)
j = json.loads(json.dumps(doc)); j["list"][0]["attempts"] = "1"; write("retyped", j)
j = json.loads(json.dumps(doc)); j["jobs"]["total"] = 6.0; write("float", j)
j = json.loads(json.dumps(doc)); j["schema"] = "jq-stat/2"; write("version", j)
EOF
	for c in added removed renamed retyped float version; do
		run -1 python3 "$CHECK" validate "$s" "$D/$c.json"
	done
}

@test "schema: each version's schema file is well-formed, only grew since it was first committed" {
	local f top first old
	top=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	for f in "$SCHEMA_DIR"/jq-stat-*.json; do
		run -0 python3 "$CHECK" lint "$f"
		if ! git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
			continue	# not a git checkout: nothing to compare with
		fi
		first=$(git -C "$top" log --diff-filter=A --format=%H -- "tests/schema/${f##*/}" | tail -n 1)
		[[ -n $first ]] || continue	# not committed yet
		old=$D/${f##*/}.first
		git -C "$top" show "$first:tests/schema/${f##*/}" >"$old"
		run -0 python3 "$CHECK" grown "$old" "$f"
	done
	# and the check catches a schema that lost or changed a field
	sed -e 's/"worker": {"type": \["string", "null"\]}/"worker": {"type": "string"}/' \
		-e 's/"elapsed_ms", "resumed",/"resumed",/' "$SCHEMA_DIR/jq-stat-1.json" >"$D/worse.json"
	run -1 python3 "$CHECK" grown "$SCHEMA_DIR/jq-stat-1.json" "$D/worse.json"
	assert_output --partial "worker: type"
	assert_output --partial "'elapsed_ms' is no longer required"
}

@test "schema: the version jq-stat prints has its file, and jq-stat(1) documents every field" {
	local man=$BATS_TEST_DIRNAME/../man/jq-stat.1 version
	version=$(sed -n 's/^#define JQ_STAT_SCHEMA[[:space:]]*"\([^"]*\)".*/\1/p' \
		"$BATS_TEST_DIRNAME/../src/jq-stat.c")
	[[ -n $version ]] || fail "no JQ_STAT_SCHEMA in src/jq-stat.c"
	[[ -f $SCHEMA_DIR/${version/\//-}.json ]] || fail "no schema file for $version"
	grep -qF "$version" "$man" || fail "jq-stat(1) does not name $version"
	python3 - "$SCHEMA_DIR/${version/\//-}.json" "$man" <<'EOF'
import json, re, sys
schema = json.load(open(sys.argv[1]))
man = open(sys.argv[2]).read()
section = man[man.index(".Sh JSON OUTPUT"):man.index(".Sh ENVIRONMENT")]
names = set()
def walk(node):
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    for k, sub in node.get("properties", {}).items():
        names.add(k)
        walk(sub)
    if isinstance(node.get("additionalProperties"), dict):
        walk(node["additionalProperties"])
    if "items" in node:
        walk(node["items"])
walk(schema)
missing = sorted(n for n in names if not re.search(r"^\.(It )?Li %s\b" % re.escape(n), section, re.M))
assert not missing, "not documented in JSON OUTPUT: %s" % missing
EOF
}

@test "the longest JOBINFO line fits: a name near 4096 bytes, a 256-byte worker, a long message" {
	local e=$'\xc3\xa9' comp name dir i n msg LC_ALL=C	# ${#var} counts bytes
	comp=$(printf "$e%.0s" {1..125})	# 250 bytes, each encoded as 3 characters
	dir=$D
	for ((i = 0; i < 15; i++)); do dir+=/$comp; done
	mkdir -p "$dir"
	# the last component fills the path up to 4095 bytes (PATH_MAX less its NUL) and 255 (a
	# name in a directory), its result's name ".result" included
	n=$(((4095 - ${#dir} - 1 - 7) / 2))
	((n > 124)) && n=124
	name=$dir/$(printf "$e%.0s" $(seq "$n"))
	((${#name} > 3900 && ${#name} <= 4088)) || fail "name of ${#name} bytes"
	printf 'x\n' >"$name"
	start_server "$name"
	# (a worker name of 256 bytes that are not ASCII does not fit the 512 bytes a line may have
	# before authentication, once encoded: 256 plain bytes do)
	run -0 jq-take --worker "$(printf 'w%.0s' {1..256})" -o "$D/job" "$SERVER"
	msg=$(printf "$e%.0s" {1..2048})end
	run -0 jq-put --fail -x 9 -m "$msg" "$SERVER" "$output"
	open_worker lister
	sendl 'JOBS'
	recv
	[[ $line == 'JOBINFO 1 '*' status=exit:9 msg='*end ]] || fail "line: ${line:0:100}..."
	((${#line} < 16384)) || fail "JOBINFO line of ${#line} bytes"
	expect 'END'
	jq-stat --json --list "$SERVER" >"$D/long.json"
	NAME=$name MSG=$msg json_file_check "$D/long.json" \
		'j["list"][0]["name"].encode("utf-8", "surrogateescape") == __import__("os").environb[b"NAME"]' \
		'j["list"][0]["worker"] == "w" * 256' \
		'j["list"][0]["failure"]["message"].endswith("\u00e9\u00e9end")' \
		'len(j["list"][0]["failure"]["message"]) < len(__import__("os").environ["MSG"])'
	run -0 jq-stat --list "$SERVER"
	assert_line --index 2 --regexp '^ +\.\.\..*end$'
}
