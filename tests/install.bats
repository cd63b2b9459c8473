#!/usr/bin/env bats
# make install and make uninstall, into a staging directory (DESTDIR): every
# program, page and completion lands where its reader looks (man finds jq(7),
# each shell its completion), and uninstall leaves nothing behind.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	STAGE=$BATS_TEST_TMPDIR/stage
	PROGS=(jq-serve jq-take jq-put jq-stat jq-run)
}

# make_in PREFIX TARGET: make TARGET with DESTDIR=$STAGE and PREFIX, quietly
make_in() {
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$TOP" BUILDDIR="$BUILDDIR" DESTDIR="$STAGE" PREFIX="$1" "$2"
	assert_success
}

# left_in_stage: the files and links under $STAGE, one a line
left_in_stage() {
	find "$STAGE" \( -type f -o -type l \) -printf '%P\n' | sort
}

@test "PREFIX=/usr: programs, pages, completions for three shells, docs; man finds jq(7); uninstall removes them all" {
	local p bashdir=/usr/share/bash-completion/completions
	if pkg-config --exists bash-completion 2>/dev/null; then
		bashdir=$(pkg-config --variable=completionsdir bash-completion)
	fi
	make_in /usr install
	for p in "${PROGS[@]}"; do
		assert_file_executable "$STAGE/usr/bin/$p"
		assert_file_exist "$STAGE/usr/share/man/man1/$p.1"
		assert_file_exist "$STAGE$bashdir/$p"
		assert_file_exist "$STAGE/usr/share/fish/vendor_completions.d/$p.fish"
	done
	assert_file_exist "$STAGE/usr/share/man/man7/jq.7"
	assert_file_exist "$STAGE/usr/share/man/man7/jq-protocol.7"
	assert_file_exist "$STAGE/usr/share/zsh/vendor-completions/_jq_tools"
	assert_file_exist "$STAGE/usr/share/doc/jq-tools/README"

	# man jq finds the overview (no jq(1) in this tree), and man 7 jq always does
	run -0 man -M "$STAGE/usr/share/man" -w jq
	assert_output "$STAGE/usr/share/man/man7/jq.7"
	run -0 env MANPATH="$STAGE/usr/share/man:/usr/share/man" man -w 7 jq
	assert_output "$STAGE/usr/share/man/man7/jq.7"
	run -0 env MANPATH="$STAGE/usr/share/man" MANPAGER=cat MANWIDTH=80 man 7 jq
	assert_output --partial "THE MODEL"
	assert_output --partial "jq-protocol(7)"

	# bash-completion's loader finds the script for every name
	for p in "${PROGS[@]}"; do
		XDG_DATA_DIRS=$STAGE/usr/share run -0 bash -c \
			"source /usr/share/bash-completion/bash_completion && __load_completion $p && complete -p $p"
		assert_output "complete -F _jq_tools $p"
	done

	make_in /usr uninstall
	run left_in_stage
	assert_output ""
}

@test "PREFIX=/usr/local: completions under the prefix, in directories each shell searches" {
	local p
	make_in /usr/local install
	for p in "${PROGS[@]}"; do
		assert_file_exist "$STAGE/usr/local/share/bash-completion/completions/$p"
		assert_file_exist "$STAGE/usr/local/share/fish/vendor_completions.d/$p.fish"
	done
	assert_file_exist "$STAGE/usr/local/share/zsh/site-functions/_jq_tools"
	assert_file_exist "$STAGE/usr/local/share/man/man7/jq.7"
	# those directories are on each shell's own search path (XDG_DATA_DIRS's
	# default for bash-completion and fish, $fpath for zsh)
	grep -qF '${XDG_DATA_DIRS:-/usr/local/share:/usr/share}' /usr/share/bash-completion/bash_completion
	if command -v zsh >/dev/null; then
		zsh -fc 'print -l $fpath' | grep -qx /usr/local/share/zsh/site-functions
	fi
	if command -v fish >/dev/null; then
		XDG_DATA_DIRS=/usr/local/share:/usr/share fish -c 'printf "%s\n" $fish_complete_path' |
			grep -qx /usr/local/share/fish/vendor_completions.d
	fi
	make_in /usr/local uninstall
	run left_in_stage
	assert_output ""
}
