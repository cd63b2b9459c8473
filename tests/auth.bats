#!/usr/bin/env bats
# Authentication (issue 5): the token file that jq-serve creates and every client reads, the
# HMAC challenge-response, refusals with exit status 10 and a message that says what to do,
# --no-auth, --token-file, and SO_PEERCRED on UNIX sockets.  The protocol side (what a peer may
# send before authenticating, replayed handshakes) is in tests/hostile.bats.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
	printf 'one\n' >"$D/a"
}

# new_token FILE: write a fresh, valid token (64 hex digits) to FILE, mode 0600
new_token() {
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1")
}

# mode FILE: its permission bits in octal
mode() { stat -c %a "$1"; }

@test "jq-serve creates ~/.config/jq/token on first use (64 hex digits, 0600 in 0700); clients just work" {
	export HOME=$D/home
	mkdir -p "$HOME"
	unset JQ_TOKEN_FILE XDG_CONFIG_HOME
	start_server "$D/a"
	local tok=$HOME/.config/jq/token
	assert_file_exists "$tok"
	assert_equal "$(mode "$tok")" 600
	assert_equal "$(mode "$HOME/.config/jq")" 700
	run -0 cat "$tok"
	assert_output --regexp '^[0-9a-f]{64}$'
	local first=$output
	# a shared home: the clients read the same file with no option at all
	run -0 jq-take -o "$D/in" "$SERVER"
	run -0 jq-put "$SERVER" "$output" "$D/in"
	wait_server_exit 30
	assert_equal "$status" 0
	# the next server reuses the token instead of making a new one
	printf 'two\n' >"$D/b"
	start_server "$D/b"
	assert_equal "$(cat "$tok")" "$first"
	run -0 jq-stat "$SERVER"
}

@test "XDG_CONFIG_HOME moves the default token file" {
	export HOME=$D/home XDG_CONFIG_HOME=$D/xdg
	mkdir -p "$HOME"
	unset JQ_TOKEN_FILE
	start_server "$D/a"
	assert_file_exists "$D/xdg/jq/token"
	assert_file_not_exists "$HOME/.config/jq/token"
	run -0 jq-stat "$SERVER"
}

@test "a client without the token file is refused with status 10 and told what to copy" {
	start_server -v "$D/a"
	run -10 env JQ_TOKEN_FILE="$D/nowhere" jq-take -o "$D/in" "$SERVER"
	assert_output --partial "$D/nowhere"
	assert_output --partial "copy the token file from the server's host"
	assert_file_not_exists "$D/in"
	run -10 jq-stat --token-file "$D/nowhere" "$SERVER"
	assert_output --partial "there is no token file $D/nowhere"
	# nothing was taken
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^jobs +1 total, 1 waiting, 0 running'
}

@test "a different token is refused with status 10; the server logs the refusal and hands out nothing" {
	start_server -v "$D/a"
	new_token "$D/other"
	run -10 jq-take --token-file "$D/other" -o "$D/in" "$SERVER"
	assert_output --partial "the server refused the token in $D/other"
	assert_file_not_exists "$D/in"
	run -10 jq-put --token-file "$D/other" "$SERVER" "$(old_handle 1 "$D/a")" "$D/a"
	run -10 jq-run --token-file "$D/other" --reconnect 30s "$SERVER" -- cat
	assert_output --partial "refused the token"
	grep -q 'authentication refused: wrong token' "$SERVER_LOG"
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^jobs +1 total, 1 waiting, 0 running, 0 done'
}

@test "a token file that group or others may read is refused, by the server and by clients, with the fix" {
	new_token "$D/tok"
	chmod 640 "$D/tok"
	run -10 jq-serve --token-file "$D/tok" "$D/a"
	assert_output --partial "mode 0640"
	assert_output --partial "chmod 600 $D/tok"
	chmod 600 "$D/tok"
	start_server --token-file "$D/tok" "$D/a"
	chmod 604 "$D/tok"
	run -10 jq-stat --token-file "$D/tok" "$SERVER"
	assert_output --partial "chmod 600 $D/tok"
	chmod 600 "$D/tok"
	run -0 jq-stat --token-file "$D/tok" "$SERVER"
}

@test "a file that is not a token (text, too short, odd digits) is refused, not used" {
	local bad
	for bad in 'hello world' 0123456789abcdef0123456789abcde 0123456789abcdef0123456789abcdef0; do
		(umask 077 && printf '%s\n' "$bad" >"$D/tok")
		run -10 jq-serve --token-file "$D/tok" "$D/a"
		assert_output --partial "$D/tok is not a jq token"
	done
	# a directory is not a token either
	mkdir -m 700 "$D/dir"
	run -10 jq-serve --token-file "$D/dir" "$D/a"
	assert_output --partial "not a regular file"
}

@test "a token file owned by another user is refused" {
	((EUID == 0)) || skip "needs root to give a file to another user (CI runs as root)"
	new_token "$D/tok"
	chown 65534 "$D/tok"
	run -10 jq-serve --token-file "$D/tok" "$D/a"
	assert_output --partial "belongs to uid 65534"
}

@test "--token-file and JQ_TOKEN_FILE choose the token on both sides; the secret is never logged" {
	new_token "$D/t1"
	start_server -vv --token-file "$D/t1" "$D/a"
	run -0 jq-stat --token-file "$D/t1" "$SERVER"
	run -0 env JQ_TOKEN_FILE="$D/t1" jq-stat "$SERVER"
	# the per-test default token ($JQ_TOKEN_FILE) is another secret
	new_token "$JQ_TOKEN_FILE"
	run -10 jq-stat "$SERVER"
	run -0 grep -c . "$SERVER_LOG"
	run ! grep -F "$(cat "$D/t1")" "$SERVER_LOG"
}

@test "--no-auth warns loudly and lets clients without any token in, when they say --no-auth too" {
	start_server --no-auth "$D/a"
	grep -q 'WARNING: authentication is off' "$SERVER_LOG"
	export JQ_TOKEN_FILE=$D/nowhere
	run -10 jq-stat "$SERVER"
	assert_output --partial "--no-auth or JQ_NO_AUTH=1"
	export JQ_NO_AUTH=1
	run -0 jq-take -o "$D/in" "$SERVER"
	run -0 jq-put "$SERVER" "$output" "$D/in"
	wait_server_exit 30
	assert_equal "$status" 0
	assert_file_not_exists "$D/nowhere"
	run -2 jq-serve --no-auth --token-file "$D/t" "$D/a"
	assert_output --partial "--no-auth excludes"
}

@test "a client hangs up on a server that cannot prove it holds the token" {
	command -v socat
	local sock=$D/fake.sock sn
	sn=$(printf '%064d' 0)
	new_token "$JQ_TOKEN_FILE"
	# the fake server greets properly, accepts any HELLO and answers with a wrong proof
	cat >"$D/fake" <<-EOF
		#!/bin/bash
		echo 'JQ 2 fake/0 auth=hmac-sha256 nonce=$sn'
		read -r line
		echo 'OK 2 auth=$(printf '%064d' 1)'
		read -r line
	EOF
	jq_bg socat "UNIX-LISTEN:$sock,fork" "EXEC:bash $D/fake"
	local i
	for ((i = 0; i < 400; i++)); do
		[[ -S $sock ]] && break
		sleep 0.05
	done
	run -10 jq-stat "unix:$sock"
	assert_output --partial "did not prove it holds our token"
}

@test "UNIX socket: our own uid needs no token; --unix-auth token asks for it" {
	start_server_unix "$D/a"
	run -0 env JQ_TOKEN_FILE="$D/nowhere" jq-stat "$SERVER"
	local sock=${SERVER#unix:}
	assert_equal "$(mode "$sock")" 600
	stop_server
	start_server_unix --unix-auth token "$D/a"
	run -10 env JQ_TOKEN_FILE="$D/nowhere" jq-stat "$SERVER"
	run -0 jq-stat "$SERVER"
	run -2 jq-serve --unix-auth maybe "$D/a"
}

@test "UNIX socket: a peer under another uid is refused by SO_PEERCRED even when the socket mode is loosened" {
	((EUID == 0)) || skip "needs root to connect as another user (CI runs as root)"
	command -v setpriv socat
	start_server_unix -v "$D/a"
	local sock=${SERVER#unix:}
	chmod 711 "$(dirname "$sock")"
	chmod 666 "$sock"
	# the refusal comes instead of the greeting: only read (-u), so that no write can race it
	run -0 timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups \
		socat -u -t 5 "UNIX-CONNECT:$sock" -
	# the refusal says how to get in
	assert_output --regexp '^ERR AUTH peer uid 65534 is not the server.s uid 0 \(nor root\): run the client as root \(runuser -u root -- jq-put \.\.\.\), or use the token over TCP; closing'
	refute_output --partial 'STAT total'
	grep -q 'authentication refused: peer uid 65534' "$SERVER_LOG"
}

@test "UNIX socket: a server run by another user lets root in without a token (uid auth)" {
	((EUID == 0)) || skip "needs root to run the server as another user (CI runs as root)"
	command -v setpriv socat
	jq_tmpdir
	local d=$JQ_TMP
	# the server, as nobody (65534), with its own copy of jq-serve, token and state
	cp "$(command -v jq-serve)" "$d/jq-serve"
	printf 'x\n' >"$d/a"
	chown -R 65534:65534 "$d"
	jq_bg setpriv --reuid=65534 --regid=65534 --clear-groups \
		env HOME="$d" JQ_STATE_DIR="$d/state" JQ_TOKEN_FILE="$d/token" \
		"$d/jq-serve" -v --addr-file "$d/addr" -l "unix:$d/sock" "$d/a"
	wait_for_file "$d/addr"
	# root, with no token, is let in (JQ_NO_AUTH: this root client need not trust the server)
	run -0 env JQ_NO_AUTH=1 JQ_TOKEN_FILE="$d/nowhere" jq-stat "unix:$d/sock"
	assert_line --regexp '^jobs +1 total'
	# another user is still refused, and told whom to run as (the socket's mode loosened, so
	# that SO_PEERCRED is what refuses)
	chmod 711 "$d"
	chmod 666 "$d/sock"
	run -0 timeout 20 setpriv --reuid=65533 --regid=65533 --clear-groups \
		socat -u -t 5 "UNIX-CONNECT:$d/sock" -
	assert_output --regexp '^ERR AUTH peer uid 65533 is not the server.s uid 65534 \(nor root\): run the client as [^ ]+ \(runuser -u [^ ]+ -- jq-put \.\.\.\), or use the token over TCP; closing$'
}

@test "a connection that does not authenticate in time is closed" {
	start_server --stall-timeout 1s "$D/a"
	local conn line
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	IFS= read -t 20 -r line <&"$conn"
	assert [ "${line#JQ 2 }" != "$line" ]
	# say nothing: the server gives up on the handshake
	IFS= read -t 30 -r line <&"$conn"
	assert_equal "$line" "ERR AUTH authentication took too long; closing"
	run ! read -t 20 -r line <&"$conn"
	exec {conn}<&-
	run -0 jq-stat "$SERVER"
}
