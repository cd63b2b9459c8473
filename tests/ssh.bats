#!/usr/bin/env bats
# Confidentiality through ssh forwarding, the example of jq-serve(1) SECURITY, run for real: a
# private sshd on 127.0.0.1 carries a worker's connection to the server's UNIX socket (which then
# trusts the forwarded peer by uid) and to its TCP port (which still asks for the token).

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
}

# start_sshd: a throw-away sshd for root on 127.0.0.1:$SSH_PORT with key $D/key
start_sshd() {
	ssh-keygen -q -t ed25519 -N '' -f "$D/hostkey"
	ssh-keygen -q -t ed25519 -N '' -f "$D/key"
	cp "$D/key.pub" "$D/authorized_keys"
	mkdir -p /run/sshd
	local try
	for ((try = 0; try < 5; try++)); do
		SSH_PORT=$((20000 + RANDOM % 20000))
		cat >"$D/sshd_config" <<-EOF
			ListenAddress 127.0.0.1:$SSH_PORT
			HostKey $D/hostkey
			AuthorizedKeysFile $D/authorized_keys
			PidFile $D/sshd.pid
			StrictModes no
			UsePAM no
			PermitRootLogin prohibit-password
			PasswordAuthentication no
			AllowTcpForwarding yes
			AllowStreamLocalForwarding yes
			StreamLocalBindUnlink yes
		EOF
		jq_bg /usr/sbin/sshd -D -e -f "$D/sshd_config"
		SSHD_PID=${JQ_PIDS[-1]}
		local i
		for ((i = 0; i < 200; i++)); do
			grep -q 'Server listening' "$D/sshd.log" 2>/dev/null && return 0
			_jq_exited "$SSHD_PID" && break
			sleep 0.05
		done
	done 2>>"$D/sshd.log"
	cat "$D/sshd.log" >&2
	return 1
}

# ssh_forward SPEC: ssh -N -L SPEC through the private sshd, in the background
ssh_forward() {
	jq_bg ssh -N -i "$D/key" -p "$SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ExitOnForwardFailure=yes \
		-L "$1" root@127.0.0.1
}

@test "ssh forwarding (jq-serve(1) SECURITY): a UNIX socket needs no token, a TCP port still does" {
	((EUID == 0)) || skip "needs root to run a private sshd (CI runs as root)"
	[[ -x /usr/sbin/sshd ]]
	command -v ssh ssh-keygen
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
	# the worker holds no token at all: sshd connects as root, the server's own uid
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
	local lport=$((40000 + RANDOM % 20000))
	ssh_forward "127.0.0.1:$lport:$SERVER"
	for ((i = 0; i < 200; i++)); do
		jq-stat "127.0.0.1:$lport" >/dev/null 2>&1 && break
		sleep 0.05
	done
	run -10 env JQ_TOKEN_FILE="$D/nowhere" jq-stat "127.0.0.1:$lport"
	run -0 jq-run "127.0.0.1:$lport" -- tr a-z A-Z
	wait_server_exit 30
	assert_equal "$status" 0
	for f in "$D"/in2/*.dat; do
		assert_equal "$(cat "$f.result")" "$(tr a-z A-Z <"$f")"
	done
}
