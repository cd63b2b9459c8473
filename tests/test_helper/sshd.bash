# tests/test_helper/sshd.bash: a private sshd on 127.0.0.1 for the tests that go through ssh
# (tests/ssh.bats, tests/recipes.bats).  Load it after test_helper/common.
#
#   sshd_require           fail the test unless ssh, ssh-keygen and /usr/sbin/sshd are installed
#                          (sh share/setup check installs them); skip it when this user's login
#                          shell runs no command (nologin), as sshd runs every command through it
#   start_sshd             a throw-away sshd on 127.0.0.1:$SSH_PORT run as this user, with a new
#                          host key and one authorized key, $D/key; its pid in SSHD_PID (a jq_bg
#                          child), its log in $D/sshd.log.  As root it needs /run/sshd, which it
#                          makes; as another user it runs unprivileged and lets in only that user.
#   ssh_config_file NAME...   write $D/ssh_config, in which every NAME is a Host alias for that
#                          sshd (this user, $D/key, no host key checks, batch mode)
#
# CI runs as root; a developer who is not root can run these tests too when sshd is installed.

# sshd_require: see the top of this file
sshd_require() {
	local shell t
	for t in /usr/sbin/sshd ssh ssh-keygen; do
		if ! command -v "$t" >/dev/null; then
			echo "$t is not installed (openssh-server, openssh-client: sh share/setup check)" >&2
			return 1
		fi
	done
	shell=$(getent passwd "$(id -un)" | cut -d: -f7)
	case ${shell##*/} in
	nologin | false | '') skip "this user's login shell ($shell) runs no command over ssh" ;;
	esac
}

# start_sshd: see the top of this file
start_sshd() {
	ssh-keygen -q -t ed25519 -N '' -f "$D/hostkey"
	ssh-keygen -q -t ed25519 -N '' -f "$D/key"
	cp "$D/key.pub" "$D/authorized_keys"
	# root's sshd checks its privilege separation directory; an unprivileged one has none
	if ((EUID == 0)); then mkdir -p /run/sshd; fi
	local try i
	for ((try = 0; try < 5; try++)); do
		SSH_PORT=$(free_tcp_port)
		cat >"$D/sshd_config" <<-EOF
			ListenAddress 127.0.0.1:$SSH_PORT
			HostKey $D/hostkey
			AuthorizedKeysFile $D/authorized_keys
			PidFile $D/sshd.pid
			StrictModes no
			UsePAM no
			PermitRootLogin prohibit-password
			PasswordAuthentication no
			KbdInteractiveAuthentication no
			AllowTcpForwarding yes
			AllowStreamLocalForwarding yes
			StreamLocalBindUnlink yes
		EOF
		jq_bg /usr/sbin/sshd -D -e -f "$D/sshd_config"
		SSHD_PID=${JQ_PIDS[-1]}
		for ((i = 0; i < 200; i++)); do
			grep -q 'Server listening' "$D/sshd.log" 2>/dev/null && return 0
			_jq_exited "$SSHD_PID" && break
			sleep 0.05
		done
	done 2>>"$D/sshd.log"
	cat "$D/sshd.log" >&2
	return 1
}

# ssh_config_file: see the top of this file
ssh_config_file() {
	{
		echo "Host $*"
		echo "	HostName 127.0.0.1"
		echo "	Port ${SSH_PORT:?start_sshd first}"
		echo "	User $(id -un)"
		echo "	IdentityFile $D/key"
		echo "	IdentitiesOnly yes"
		echo "	BatchMode yes"
		echo "	StrictHostKeyChecking no"
		echo "	UserKnownHostsFile /dev/null"
		echo "	LogLevel ERROR"
	} >"$D/ssh_config"
}
