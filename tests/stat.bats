#!/usr/bin/env bats
# jq-stat: job counts in every state, connected workers, failed jobs, and the
# --json form (checked with python3's json module).

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
}

# json_check EXPR...: run jq-stat --json on $SERVER, check it is valid JSON with
# python3 -m json.tool, then evaluate each python EXPR with the document as j;
# fails naming the first false EXPR
json_check() {
	jq-stat --json "$SERVER" >"$D/stat.json"
	json_file_check "$D/stat.json" "$@"
}

# hello_conn NAME: open a TCP connection to $SERVER in fd $conn, read the
# greeting and say HELLO with the (already percent-encoded) worker NAME
hello_conn() {
	local line greeting
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	read -t 20 -r greeting <&"$conn"
	[[ $greeting == 'JQ '* ]]
	hello_line 2 "name=$1" >&"$conn"
	read -t 20 -r line <&"$conn"
	[[ $line == 'OK 2'* ]]
}

@test "jq-stat counts waiting, running, done and failed jobs" {
	make_files "$D/in" 5
	start_server "$D"/in/*.dat
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^jobs +5 total, 5 waiting, 0 running, 0 done, 0 failed$'
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	h1=$HANDLE
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 2
	h2=$HANDLE
	run -0 jq-take -o "$D/job" "$SERVER"
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^jobs +5 total, 2 waiting, 3 running, 0 done, 0 failed$'
	run -0 jq-put "$SERVER" "$h1" "$D/job"
	run -0 jq-put --fail -x 3 -m 'bad header' "$SERVER" "$h2"
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^server +127\.0\.0\.1:[0-9]+ .*0\.1\.0'
	assert_line --regexp '^jobs +5 total, 2 waiting, 1 running, 1 done, 1 failed$'
	assert_line --regexp '^failed +1$'
	assert_line --regexp '^ +2 +.*file0002\.dat.*exit 3.*bad header'
	json_check 'j["jobs"] == {"total": 5, "waiting": 2, "running": 1, "done": 1, "failed": 1, "blocked": 0}'
}

@test "jq-stat --json is valid JSON with every field" {
	make_files "$D/in" 3
	start_server "$D"/in/*.dat
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	run -0 jq-put --fail -x 7 -m $'two\nlines "quoted" \\ and \x01' "$SERVER" "$HANDLE"
	json_check \
		'isinstance(j["server"], str) and j["server"].startswith("127.0.0.1:")' \
		'j["version"] == "0.1.0"' \
		'j["protocol"] == 2' \
		'j["jobs"] == {"total": 3, "waiting": 2, "running": 0, "done": 0, "failed": 1, "blocked": 0}' \
		'isinstance(j["workers"], list)' \
		'len(j["failed"]) == 1' \
		'j["failed"][0]["id"] == "1"' \
		'j["failed"][0]["name"].endswith("file0001.dat")' \
		'j["failed"][0]["status"] == "exit 7"' \
		'j["failed"][0]["message"] == "two\nlines \"quoted\" \\ and \x01"'
}

@test "jq-stat lists a worker while it is connected, and not after" {
	make_files "$D/in" 2
	start_server "$D"/in/*.dat
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^workers +0$'
	# a connection becomes a worker with its first TAKE
	hello_conn 'probe%20one'
	printf 'TAKE\n' >&"$conn"
	read -t 20 -r line <&"$conn"
	[[ $line == 'JOB 1 '* ]]
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^workers +1$'
	assert_line --regexp '^ +probe one +from 127\.0\.0\.1:[0-9]+ +running 1 +done 0 +failed 0$'
	json_check \
		'[w["name"] for w in j["workers"]] == ["probe one"]' \
		'j["workers"][0]["peer"].startswith("127.0.0.1:")' \
		'j["workers"][0]["running"] == 1' \
		'j["workers"][0]["done"] == 0 and j["workers"][0]["failed"] == 0'
	exec {conn}>&-
	# the server notices the close asynchronously: poll, bounded
	for ((i = 0; i < 400; i++)); do
		run -0 jq-stat "$SERVER"
		[[ $output != *'probe one'* ]] && break
		sleep 0.05
	done
	refute_output --partial 'probe one'
}

@test "jq-stat --json escapes awkward job names and worker names" {
	mkdir "$D/odd"
	name=$'we"ird\\na\nme é'
	printf 'x\n' >"$D/odd/$name"
	printf 'y\n' >"$D/other"
	start_server "$D/odd/$name" "$D/other"
	hello_conn 'tab%09and%22quote'
	printf 'TAKE match=%%2Aother\n' >&"$conn"
	read -t 20 -r line <&"$conn"
	[[ $line == 'JOB 2 '* ]]
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	run -0 jq-put --fail -m 'm' "$SERVER" "$HANDLE"
	NAME=$name json_check \
		'j["failed"][0]["name"].endswith(__import__("os").environ["NAME"])' \
		'any(w["name"] == "tab\tand\"quote" for w in j["workers"])'
}

@test "jq-stat works over a UNIX socket" {
	make_files "$D/in" 1
	start_server_unix "$D"/in/*.dat
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^jobs +1 total, 1 waiting, 0 running, 0 done, 0 failed$'
	json_check 'j["jobs"]["total"] == 1' 'j["server"].startswith("unix:")'
}
