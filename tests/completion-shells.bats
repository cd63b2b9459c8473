#!/usr/bin/env bats
# zsh and fish completion for the jq tools (completions/_jq_tools and
# completions/jq-tools.fish), installed by `make install` into a staging
# directory and driven for real: an interactive zsh or fish in a
# pseudo-terminal (tests/test_helper/ptyshell.py) finds them where it looks,
# a line is typed and Tab pressed, and the test reads the command line that
# results and the candidates the shell listed (zsh: its listing on the
# terminal; fish: complete -C in the same shell, for lines typed without Tab).

bats_require_minimum_version 1.5.0

setup_file() {
	load test_helper/common
	STAGE=$BATS_FILE_TMPDIR/stage
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$BATS_TEST_DIRNAME/.." BUILDDIR="$BUILDDIR" DESTDIR="$STAGE" PREFIX=/usr \
		install >"$BATS_FILE_TMPDIR/install.log" 2>&1 ||
		{
			cat "$BATS_FILE_TMPDIR/install.log" >&2
			return 1
		}
	export STAGE
}

setup() {
	load test_helper/common
	jq_setup
	# no user dotfiles; one known host
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME/.ssh"
	echo "node7.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" \
		>"$HOME/.ssh/known_hosts"
	unset JQ_SERVER
	DRIVER=$BATS_TEST_DIRNAME/test_helper/ptyshell.py
	# a directory with known files to complete on
	WORK=$BATS_TEST_TMPDIR/work
	mkdir -p "$WORK/sub" "$WORK/outdir"
	touch "$WORK/alpha.wav" "$WORK/beta.txt" "$WORK/sock.s"
	cd "$WORK" || return 1
}

# need_shell SHELL: skip when SHELL is not installed, and write its start-up file
need_shell() {
	command -v "$1" >/dev/null || skip "$1 is not installed (sh share/setup check installs it)"
	RC=$BATS_TEST_TMPDIR/rc-$1
	mkdir -p "$RC/fish"
	case $1 in
	zsh)
		# the completions where a zsh package puts them; candidates listed one a line,
		# each between <NO> and <EC> (list-colors), as zsh's own tests do
		cat >"$RC/.zshrc" <<EOF
PS1='%# '
fpath=($STAGE/usr/share/zsh/vendor-completions \$fpath)
autoload -Uz compinit && compinit -u -d \$ZDOTDIR/.zcompdump
unsetopt list_ambiguous beep
LISTMAX=100000
zstyle ':completion:*:default' list-colors 'no=<NO>' 'fi=<NO>' 'di=<NO>' 'ln=<NO>' 'ex=<NO>' \
    'so=<NO>' 'pi=<NO>' 'bd=<NO>' 'cd=<NO>' 'or=<NO>' 'mi=<NO>' 'lc=' 'rc=' 'ec=<EC>' 'tc=' 'sp='
zstyle ':completion:*' list-packed false
_jq_dump() { zle -R; zle -I; print -rn -- "@@BUF<\$BUFFER>@@"\$'\n'"@@END@@"; BUFFER=; zle -R -c; }
zle -N _jq_dump
bindkey '^G' _jq_dump
print @@READY@@
EOF
		;;
	fish)
		# the completions where a fish package puts them, found through XDG_DATA_DIRS
		export XDG_DATA_DIRS=$STAGE/usr/share:/usr/share
		# a fish whose user data directory lacks generated_completions starts a python
		# job in the background that parses every man page on the machine; on a loaded
		# machine that starved the session past its time-outs (2 runs in 3 failed)
		mkdir -p "$HOME/.local/share/fish/generated_completions"
		cat >"$RC/fish/config.fish" <<'EOF'
set -g fish_greeting ''
function fish_prompt; printf '> '; end
function fish_title; end
function __jq_dump
    set -l b (commandline)
    printf '@@BUF<%s>@@\n' "$b"
    for c in (complete -C"$b")
        printf '@@ITEM<%s>@@\n' (string split -m 1 \t -- $c)[1]
    end
    printf '@@END@@\n'
    commandline ''
    commandline -f repaint
end
bind \cg __jq_dump
echo @@READY@@
EOF
		;;
	esac
}

# typed SHELL LINE...: type each LINE (a tab is the Tab key) in an interactive SHELL
typed() {
	local sh=$1
	shift
	run -0 timeout -k 5 120 python3 "$DRIVER" "$sh" "$RC" "$@"
}

# items: the candidates of the last typed, one a line
items() {
	sed -n 's/^ITEM //p' <<<"$output"
}

# help_longs TOOL: the long options of TOOL --help (from the option column of
# "  -l, --listen ADDR   text", not from the text)
help_longs() {
	"$1" --help | grep -E '^ {1,8}-' | sed -E 's/^ +//; s/  .*//' | grep -oE -- '--[a-z0-9-]+' | sort -u
}

# offers_every_option SHELL TYPED-SUFFIX: for each tool, the line "TOOL --"
# (then TYPED-SUFFIX: a tab for zsh, nothing for fish) lists every long option
# of its --help and none of another tool's only
offers_every_option() {
	local sh=$1 suffix=$2 t o got bad=0
	for t in jq-serve jq-take jq-put jq-stat jq-run; do
		typed "$sh" "$t --$suffix"
		got=$(items | sort -u)
		for o in $(help_longs "$t"); do
			grep -qxF -- "$o" <<<"$got" || {
				echo "$sh: $t: $o is in --help but not offered" >&2
				bad=1
			}
		done
		for o in $got; do
			[[ $o == --* ]] || continue
			help_longs "$t" | grep -qxF -- "$o" || {
				echo "$sh: $t: $o is offered but not in --help" >&2
				bad=1
			}
		done
	done
	return "$bad"
}

@test "make install puts zsh's and fish's completion where the shells look" {
	local p
	[[ -f $STAGE/usr/share/zsh/vendor-completions/_jq_tools ]]
	head -n 1 "$STAGE/usr/share/zsh/vendor-completions/_jq_tools" |
		grep -qx '#compdef jq-serve jq-take jq-put jq-stat jq-run'
	for p in jq-serve jq-take jq-put jq-stat jq-run; do
		[[ -f $STAGE/usr/share/fish/vendor_completions.d/$p.fish ]]
	done
}

@test "the zsh and fish scripts parse" {
	if command -v zsh >/dev/null; then
		zsh -n "$BATS_TEST_DIRNAME/../completions/_jq_tools"
	fi
	if command -v fish >/dev/null; then
		fish --no-execute "$BATS_TEST_DIRNAME/../completions/jq-tools.fish"
	fi
}

@test "zsh: every option of every tool, from its --help" {
	need_shell zsh
	offers_every_option zsh $'\t'
	typed zsh $'jq-serve --lis\t' $'jq-take --id\t' $'jq-put --exit\t'
	assert_line "BUFFER jq-serve --listen="
	assert_line "BUFFER jq-take --id-file="
	assert_line "BUFFER jq-put --exit-status="
}

@test "zsh: option values: files, directories, durations, words, listen addresses" {
	need_shell zsh
	typed zsh $'jq-take -o al\t' $'jq-serve -o s\t' $'jq-serve --state-dir=ou\t'
	assert_line "BUFFER jq-take -o alpha.wav "
	assert_line "BUFFER jq-serve -o sub/"
	assert_line "BUFFER jq-serve --state-dir=outdir/"
	typed zsh $'jq-serve -o \t'
	assert_equal "$(items | sort | paste -sd ' ')" "outdir sub"
	typed zsh $'jq-run --timeout 10\t'
	assert_equal "$(items | sort | paste -sd ' ')" "10d 10h 10m 10ms 10s"
	typed zsh $'jq-take --lease=5\t'
	assert_equal "$(items | sort | paste -sd ' ')" "5d 5h 5m 5ms 5s"
	typed zsh $'jq-serve --unix-auth \t'
	assert_equal "$(items | sort | paste -sd ' ')" "token uid"
	typed zsh $'jq-stat --state=running,\t'
	assert_equal "$(items | sort | paste -sd ' ')" "blocked done failed waiting"
	typed zsh $'jq-serve -l \t'
	assert_line "ITEM 127.0.0.1"
	assert_line "ITEM :7117"
	assert_line "ITEM unix:"
	typed zsh $'jq-run -vj \t'
	assert_line "ITEM 1"
}

@test "zsh: server addresses: known hosts, JQ_SERVER, unix:PATH, the default port" {
	need_shell zsh
	JQ_SERVER=unix:/run/jq-test.sock typed zsh $'jq-take \t'
	assert_line "ITEM localhost"
	assert_line "ITEM node7.example"
	assert_line "ITEM unix:/run/jq-test.sock"
	assert_line "ITEM unix:"
	typed zsh $'jq-stat unix:./so\t' $'jq-take node7.ex\t' $'jq-put node7.example:\t'
	assert_line "BUFFER jq-stat unix:./sock.s "
	assert_line "BUFFER jq-take node7.example "
	assert_line "BUFFER jq-put node7.example:7117 "
}

@test "zsh: operands: jq-serve's files, jq-put's FILE, jq-run's -- then the command with its own completion" {
	need_shell zsh
	typed zsh $'jq-serve al\t' $'jq-put srv 5 al\t' $'jq-put --add srv be\t' $'jq-run srv \t' \
		$'jq-run srv -- ls --almost-al\t' $'jq-run localhost:7117 -- ls -- al\t'
	assert_line "BUFFER jq-serve alpha.wav "
	assert_line "BUFFER jq-put srv 5 alpha.wav "
	assert_line "BUFFER jq-put --add srv beta.txt "
	assert_line "BUFFER jq-run srv -- "
	assert_line "BUFFER jq-run srv -- ls --almost-all "
	assert_line "BUFFER jq-run localhost:7117 -- ls -- alpha.wav "
	typed zsh $'jq-run srv -- bas\t'
	assert_line "ITEM bash"
	typed zsh $'jq-run srv -- ls --\t'
	assert_line "ITEM --almost-all"
	refute_line "ITEM --max-jobs"
	refute_line "ITEM --keep-tmp"
}

@test "zsh: jq-run's placeholders when a word starts with < or {" {
	need_shell zsh
	typed zsh $'jq-run srv -- lame {\t'
	assert_equal "$(items | sort | paste -sd ' ')" "id} in} name} out. outdir} out}"
	typed zsh $'jq-run srv -- lame {na\t' $'jq-run srv -- lame {out.mp3\t' \
		$'jq-run srv -- lame \'<out.mp3\t' $'jq-run srv -- ffmpeg -i "<i\t' \
		$'jq-run srv -- lame \'<na\t'
	assert_line "BUFFER jq-run srv -- lame {name} "
	assert_line "BUFFER jq-run srv -- lame {out.mp3} "
	assert_line "BUFFER jq-run srv -- lame '<out.mp3>' "
	assert_line 'BUFFER jq-run srv -- ffmpeg -i "<i'
	assert_line "BUFFER jq-run srv -- lame '<name>' "
	typed zsh $'jq-run srv -- ffmpeg -i \'<i\t'
	assert_equal "$(items | sort | paste -sd ' ')" "<id> <in>"
	# not before --
	typed zsh $'jq-run {na\t'
	assert_line "BUFFER jq-run {na"
}

@test "fish: every option of every tool, from its --help" {
	need_shell fish
	offers_every_option fish ''
	typed fish $'jq-serve --lis\t' $'jq-take --id\t' $'jq-put --exit\t'
	assert_line "BUFFER jq-serve --listen "
	assert_line "BUFFER jq-take --id-file "
	assert_line "BUFFER jq-put --exit-status "
}

@test "fish: option values: files, directories, durations, words, listen addresses" {
	need_shell fish
	typed fish $'jq-take -o al\t' $'jq-serve -o s\t' $'jq-serve --state-dir=ou\t'
	assert_line "BUFFER jq-take -o alpha.wav "
	assert_line "BUFFER jq-serve -o sub/"
	assert_line "BUFFER jq-serve --state-dir=outdir/"
	typed fish 'jq-serve -o '
	assert_equal "$(items | sort | paste -sd ' ')" "outdir/ sub/"
	typed fish 'jq-run --timeout 10'
	assert_equal "$(items | sort | paste -sd ' ')" "10d 10h 10m 10ms 10s"
	typed fish 'jq-serve --unix-auth '
	assert_equal "$(items | sort | paste -sd ' ')" "token uid"
	typed fish 'jq-stat --state running,'
	assert_equal "$(items | sort | paste -sd ' ')" "running,blocked running,done running,failed running,waiting"
	typed fish 'jq-serve -l '
	assert_line "ITEM 127.0.0.1"
	assert_line "ITEM :7117"
	assert_line "ITEM unix:"
	typed fish 'jq-run -vj '
	assert_line "ITEM 1"
	refute_line "ITEM alpha.wav"
}

@test "fish: server addresses: known hosts, JQ_SERVER, unix:PATH, the default port" {
	need_shell fish
	JQ_SERVER=unix:/run/jq-test.sock typed fish 'jq-take '
	assert_line "ITEM localhost"
	assert_line "ITEM node7.example"
	assert_line "ITEM unix:/run/jq-test.sock"
	assert_line "ITEM unix:"
	typed fish $'jq-stat unix:./so\t' $'jq-take node7.ex\t' $'jq-put node7.example:\t'
	assert_line "BUFFER jq-stat unix:./sock.s "
	assert_line "BUFFER jq-take node7.example "
	assert_line "BUFFER jq-put node7.example:7117 "
}

@test "fish: operands: jq-serve's files, jq-put's FILE, jq-run's -- then the command with its own completion" {
	need_shell fish
	typed fish $'jq-serve al\t' $'jq-put srv 5 al\t' $'jq-put --add srv be\t' $'jq-run srv \t' \
		$'jq-run srv -- ls --almost-al\t' $'jq-run localhost:7117 -- ls -- al\t'
	assert_line "BUFFER jq-serve alpha.wav "
	assert_line "BUFFER jq-put srv 5 alpha.wav "
	assert_line "BUFFER jq-put --add srv beta.txt "
	# (fish adds no space after a word ending in a dash)
	assert_line "BUFFER jq-run srv --"
	assert_line "BUFFER jq-run srv -- ls --almost-all "
	assert_line "BUFFER jq-run localhost:7117 -- ls -- alpha.wav "
	typed fish 'jq-run srv -- bas'
	assert_line "ITEM bash"
	typed fish 'jq-run srv -- ls --'
	assert_line "ITEM --almost-all"
	refute_line "ITEM --max-jobs"
	refute_line "ITEM --keep-tmp"
}

@test "fish: jq-run's placeholders when a word starts with < or { (quoted)" {
	need_shell fish
	typed fish "jq-run srv -- lame '{"
	assert_equal "$(items | sort | paste -sd ' ')" "{id} {in} {name} {out. {outdir} {out}"
	typed fish $'jq-run srv -- lame \'{na\t' $'jq-run srv -- lame \'{out.mp3\t' \
		$'jq-run srv -- lame \'<out.mp3\t' $'jq-run srv -- ffmpeg -i "<na\t' \
		$'jq-run srv -- lame \\<na\t'
	assert_line "BUFFER jq-run srv -- lame '{name}' "
	assert_line "BUFFER jq-run srv -- lame '{out.mp3}' "
	assert_line "BUFFER jq-run srv -- lame '<out.mp3>' "
	assert_line 'BUFFER jq-run srv -- ffmpeg -i "<name>" '
	assert_line 'BUFFER jq-run srv -- lame \<name\> '
	typed fish "jq-run srv -- ffmpeg -i '<i"
	assert_equal "$(items | sort | paste -sd ' ')" "<id> <in>"
	# not before --
	typed fish "jq-run '{na"
	refute_line "ITEM {name}"
}
