#!/usr/bin/env bats
# Confidentiality through ssh forwarding, the example of jq-serve(1) SECURITY, run for real: a
# private sshd on 127.0.0.1 carries a worker's connection to the server's UNIX socket (which then
# trusts the forwarded peer by uid) and to its TCP port (which still asks for the token).

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/sshd
	jq_setup
}

# ssh_forward SPEC: ssh -N -L SPEC through the private sshd, in the background
ssh_forward() {
	jq_bg ssh -N -i "$D/key" -p "$SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ExitOnForwardFailure=yes \
		-L "$1" "$(id -un)@127.0.0.1"
}

@test "ssh forwarding (jq-serve(1) SECURITY): a UNIX socket needs no token, a TCP port still does" {
	sshd_require
	start_sshd 2>>"$D/sshd.log"
	make_files "$D/in" 4
	start_server_unix -v "$D"/in/*.dat
	local sock=${SERVER#unix:}
	# node1$ ssh -N -L $HOME/jq.sock:$HOME/jq.sock server
	ssh_forward "$D/local.sock:$sock"
	local i
	for ((i = 0; i < 400; i++)); do
		[[ -S $D/local.sock ]] && break
		sleep 0.05
	done
	# the worker holds no token at all: sshd connects as the server's own uid
	run -0 env JQ_TOKEN_FILE="$D/nowhere" jq-run -j 2 "unix:$D/local.sock" -- tr a-z A-Z
	wait_server_exit 30
	assert_equal "$status" 0
	local f
	for f in "$D"/in/*.dat; do
		assert_equal "$(cat "$f.result")" "$(tr a-z A-Z <"$f")"
	done

	# the same over a forwarded TCP port: the token is still needed
	make_files "$D/in2" 2
	start_server -v -l 127.0.0.1:0 "$D"/in2/*.dat
	# a port free when checked may be taken before ssh binds it: ssh then exits
	# (ExitOnForwardFailure) and another port is tried
	local lport try fwd up=
	for ((try = 0; try < 5 && !up; try++)); do
		lport=$(free_tcp_port)
		ssh_forward "127.0.0.1:$lport:$SERVER"
		fwd=${JQ_PIDS[-1]}
		for ((i = 0; i < 200; i++)); do
			if jq-stat "127.0.0.1:$lport" >/dev/null 2>&1; then
				up=1
				break
			fi
			_jq_exited "$fwd" && break
			sleep 0.05
		done
	done
	[[ -n $up ]]
	run -10 env JQ_TOKEN_FILE="$D/nowhere" jq-stat "127.0.0.1:$lport"
	run -0 jq-run "127.0.0.1:$lport" -- tr a-z A-Z
	wait_server_exit 30
	assert_equal "$status" 0
	for f in "$D"/in2/*.dat; do
		assert_equal "$(cat "$f.result")" "$(tr a-z A-Z <"$f")"
	done
}
