# jq: spread file jobs over many machines.  GNU make.
VERSION = 0.1.0
PACKAGE = jq-tools
PROGS = jq-serve jq-take jq-put jq-stat jq-run

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/$(PACKAGE)
PKG_CONFIG ?= pkg-config
# Completion goes where each shell looks.  pc_dir PKG,VAR,FALLBACK: PKG's VAR from pkg-config
# when installing into PKG's own prefix (PREFIX=/usr: bash-completion's and fish's directories),
# else FALLBACK under DATADIR, which they search too (XDG_DATA_DIRS: /usr/local/share first).
pc_dir = $(or $(if $(filter $(PREFIX),$(shell $(PKG_CONFIG) --variable=prefix $(1) 2>/dev/null)),$(shell $(PKG_CONFIG) --variable=$(2) $(1) 2>/dev/null)),$(3))
BASHCOMPDIR ?= $(call pc_dir,bash-completion,completionsdir,$(DATADIR)/bash-completion/completions)
FISHCOMPDIR ?= $(call pc_dir,fish,completionsdir,$(DATADIR)/fish/vendor_completions.d)
# zsh has no .pc: Debian's packages use vendor-completions, everything else site-functions
ZSHCOMPDIR ?= $(if $(filter /usr,$(PREFIX)),$(DATADIR)/zsh/vendor-completions,$(DATADIR)/zsh/site-functions)
INSTALL ?= install

# The user's CFLAGS come last; project flags live in JQ_* and are never dropped.
CFLAGS ?= -O2 -g
PKGS = popt libevent libsodium libarchive
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
LIBS_POPT := $(shell $(PKG_CONFIG) --libs popt)
LIBS_EVENT := $(shell $(PKG_CONFIG) --libs libevent)
LIBS_SODIUM := $(shell $(PKG_CONFIG) --libs libsodium)
LIBS_ARCHIVE := $(shell $(PKG_CONFIG) --libs libarchive)
JQ_CPPFLAGS = -D_GNU_SOURCE -DJQ_VERSION='"$(VERSION)"' -Isrc
JQ_CFLAGS = -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla -Wpointer-arith \
	-Wwrite-strings -Wnull-dereference -Wundef -fno-common
JQ_LDFLAGS =
BUILDDIR = build
ifeq ($(WERROR),1)
JQ_CFLAGS += -Werror
endif
ifeq ($(ASAN),1)
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
JQ_CFLAGS += $(SAN)
JQ_LDFLAGS += $(SAN)
# sanitizer objects live apart, so a stale plain build is never mistaken for one
BUILDDIR = build/asan
endif
ALL_CPPFLAGS = $(JQ_CPPFLAGS) $(PKG_CFLAGS) $(CPPFLAGS)
ALL_CFLAGS = $(JQ_CFLAGS) $(CFLAGS)

# Modules shared by every tool, by the clients, by the server, by jq-run.
COMMON = xmalloc parse crc32c proto net util log cli auth progress
# arch.c (libarchive) only where trees are packed or unpacked: a tool that
# links libarchive loads a dozen more libraries at every start (about 3 ms)
ARCH = arch
CLIENT = client
SERVER = server conn cmd payload jobs queue store journal joblog commit input \
	status listing spool serve template watch watchdir drain manage wait \
	archsrc archout deps $(ARCH)
RUN = spawn template run slot slotconn runjob relay runsig runshare $(ARCH)

obj = $(patsubst %,$(BUILDDIR)/%.o,$(1))
BINS = $(PROGS:%=$(BUILDDIR)/%)
UNITS = test_proto test_net test_parse test_template test_auth test_queue \
	test_journal test_store test_client test_arch
UNIT_BINS = $(UNITS:%=$(BUILDDIR)/%)

.SUFFIXES:
.DELETE_ON_ERROR:
# keep objects that chained rules would otherwise delete
.SECONDARY:

all: $(BINS)

$(BUILDDIR)/%.o: src/%.c | $(BUILDDIR)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILDDIR)/%.o: tests/unit/%.c | $(BUILDDIR)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

LINK = $(CC) $(ALL_CFLAGS) $(JQ_LDFLAGS) $(LDFLAGS) -o $@ $^

$(BUILDDIR)/jq-serve: $(call obj,jq-serve $(SERVER) $(COMMON))
	$(LINK) $(LIBS_POPT) $(LIBS_EVENT) $(LIBS_SODIUM) $(LIBS_ARCHIVE) -pthread $(LDLIBS)
$(BUILDDIR)/jq-put $(BUILDDIR)/jq-stat: $(BUILDDIR)/%: $(call obj,$(CLIENT) $(COMMON)) $(BUILDDIR)/%.o
	$(LINK) $(LIBS_POPT) $(LIBS_SODIUM) $(LDLIBS)
$(BUILDDIR)/jq-take: $(call obj,jq-take $(CLIENT) $(COMMON) $(ARCH))
	$(LINK) $(LIBS_POPT) $(LIBS_SODIUM) $(LIBS_ARCHIVE) $(LDLIBS)
$(BUILDDIR)/jq-stat: $(call obj,show statlist)
$(BUILDDIR)/jq-put: $(call obj,show putwait)
$(BUILDDIR)/jq-run: $(call obj,jq-run $(RUN) $(CLIENT) $(COMMON))
	$(LINK) $(LIBS_POPT) $(LIBS_SODIUM) $(LIBS_ARCHIVE) $(LDLIBS)
$(BUILDDIR)/test_%: $(BUILDDIR)/test_%.o $(call obj,$(COMMON) template $(ARCH))
	$(LINK) $(LIBS_POPT) $(LIBS_SODIUM) $(LIBS_ARCHIVE) $(LDLIBS)
# units of the server's modules link only the objects they test (test_client
# includes client.c itself, to reach its private struct)
$(BUILDDIR)/test_queue: $(call obj,test_queue queue $(COMMON) $(ARCH))
	$(LINK) $(LIBS_POPT) $(LIBS_SODIUM) $(LIBS_ARCHIVE) $(LDLIBS)
$(BUILDDIR)/test_store: $(call obj,test_store store $(COMMON) $(ARCH))
	$(LINK) $(LIBS_POPT) $(LIBS_SODIUM) $(LIBS_ARCHIVE) $(LDLIBS)
$(BUILDDIR)/test_journal: $(call obj,test_journal journal queue spool serve watchdir deps \
	template input store drain $(COMMON) $(ARCH))
	$(LINK) $(LIBS_POPT) $(LIBS_SODIUM) $(LIBS_ARCHIVE) -pthread $(LDLIBS)

$(BUILDDIR):
	mkdir -p $@

-include $(wildcard $(BUILDDIR)/*.d)

# A test helper run as a job's command (tests/run.bats); built plain, never sanitized, so that
# what it sees is what jq-run gave it.
$(BUILDDIR)/fdprobe: tests/probe/fdprobe.c | $(BUILDDIR)
	$(CC) -std=gnu11 -O2 -Wall -Wextra $(CFLAGS) $(LDFLAGS) -o $@ $<

# make check prints, as its last line, "N passed, N failed" over every check.
check: all $(UNIT_BINS) $(BUILDDIR)/fdprobe
	@BUILDDIR=$(BUILDDIR) sh tests/run-check

# bench/run's C clients (bench/*.c), built with the project's flags; not installed.
BENCH_BINS = $(BUILDDIR)/bench/takeput $(BUILDDIR)/bench/spawnfloor $(BUILDDIR)/bench/idleconns
$(BENCH_BINS): $(BUILDDIR)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(JQ_LDFLAGS) $(LDFLAGS) -o $@ $<

bench: all $(BENCH_BINS)
	@BUILDDIR=$(BUILDDIR) bash bench/run

# the fault tests at scale: make soak SOAKFLAGS='--rounds 50 --jobs 5000'
soak: all
	@BUILDDIR=$(BUILDDIR) bash tests/soak $(SOAKFLAGS)

# One completion script per shell, for all five tools: bash's and fish's are found by command
# name, so the other names are links to the file installed as jq-serve's.
install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	    $(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(BINS) $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 0644 $(PROGS:%=man/%.1) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 0644 man/jq.7 man/jq-protocol.7 $(DESTDIR)$(MANDIR)/man7
	$(INSTALL) -m 0644 completions/jq-tools $(DESTDIR)$(BASHCOMPDIR)/jq-serve
	$(INSTALL) -m 0644 completions/_jq_tools $(DESTDIR)$(ZSHCOMPDIR)/_jq_tools
	$(INSTALL) -m 0644 completions/jq-tools.fish $(DESTDIR)$(FISHCOMPDIR)/jq-serve.fish
	for p in $(filter-out jq-serve,$(PROGS)); do \
	    ln -sf jq-serve $(DESTDIR)$(BASHCOMPDIR)/$$p && \
	    ln -sf jq-serve.fish $(DESTDIR)$(FISHCOMPDIR)/$$p.fish || exit 1; done
	$(INSTALL) -m 0644 README LICENSE $(DESTDIR)$(DOCDIR)

uninstall:
	rm -f $(PROGS:%=$(DESTDIR)$(BINDIR)/%) $(PROGS:%=$(DESTDIR)$(MANDIR)/man1/%.1) \
	    $(DESTDIR)$(MANDIR)/man7/jq.7 $(DESTDIR)$(MANDIR)/man7/jq-protocol.7 \
	    $(PROGS:%=$(DESTDIR)$(BASHCOMPDIR)/%) $(DESTDIR)$(ZSHCOMPDIR)/_jq_tools \
	    $(PROGS:%=$(DESTDIR)$(FISHCOMPDIR)/%.fish)
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build

.PHONY: all check bench soak install uninstall clean

# the recipes (share/recipes/README) go with the README, the scripts among them executable;
# the systemd units name the tools where this install puts them: /usr/local/bin (the user
# units' %h/.local/bin, unless that is BINDIR) becomes $(BINDIR)
UNIT_SED = -e 's|/usr/local/bin/|$(BINDIR)/|g' \
	$(if $(filter $(HOME)/.local/bin,$(BINDIR)),,-e 's|%h/\.local/bin/|$(BINDIR)/|g')
install: install-recipes
install-recipes:
	find share/recipes -type f | sort | while IFS= read -r f; do \
	    if [ -x "$$f" ]; then m=0755; else m=0644; fi; \
	    t="$(DESTDIR)$(DOCDIR)/recipes/$${f#share/recipes/}"; \
	    $(INSTALL) -D -m $$m "$$f" "$$t" || exit 1; \
	    case $$f in share/recipes/systemd/*.service) \
	        sed -i $(UNIT_SED) "$$t" || exit 1;; esac; \
	done

.PHONY: install-recipes

# ---- fuzzing (tests/fuzz/README) ----
# make fuzz FUZZ_SECONDS=N builds the libFuzzer harnesses with clang into build/fuzz and runs
# each of FUZZ_TARGETS for N seconds (default 60) on a fresh copy of tests/fuzz/corpus; it prints
# executions and coverage, keeps crashing inputs in build/fuzz/artifacts, and fails on a crash.
FUZZ_CC = clang
FUZZ_SECONDS = 60
FUZZ_TARGETS = fuzz_conn fuzz_proto fuzz_auth
FUZZDIR = build/fuzz
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = $(ALL_CPPFLAGS) $(JQ_CFLAGS) $(FUZZ_SAN) $(CFLAGS)
FUZZ_LIBS = $(LIBS_POPT) $(LIBS_EVENT) $(LIBS_SODIUM) $(LIBS_ARCHIVE) -pthread $(LDLIBS)
FUZZ_SRC = $(patsubst %,$(FUZZDIR)/%.o,$(SERVER) $(COMMON))
FUZZ_PROTO_SRC = $(patsubst %,$(FUZZDIR)/%.o,$(COMMON) $(ARCH))

$(FUZZDIR)/%.o: src/%.c | $(FUZZDIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(FUZZDIR)/%.o: tests/fuzz/%.c | $(FUZZDIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(FUZZDIR)/fuzz_auth.o: tests/fuzz/fuzz_conn.c | $(FUZZDIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_AUTH -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(FUZZDIR)/fuzz_conn $(FUZZDIR)/fuzz_auth: $(FUZZDIR)/%: $(FUZZDIR)/%.o $(FUZZ_SRC)
	$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(FUZZ_LIBS)
$(FUZZDIR)/fuzz_proto: $(FUZZDIR)/fuzz_proto.o $(FUZZ_PROTO_SRC)
	$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(FUZZ_LIBS)
$(FUZZDIR):
	mkdir -p $@

-include $(wildcard $(FUZZDIR)/*.d)

fuzz: $(FUZZ_TARGETS:%=$(FUZZDIR)/%)
	@FUZZDIR=$(FUZZDIR) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run $(FUZZ_TARGETS)

.PHONY: fuzz

# ---- valgrind ----
# make valgrind: the unit tests and the bats files VALGRIND_TESTS with every jq-* and test_*
# program run under valgrind.  build/valgrind holds one wrapper per program that execs valgrind
# on the program in $(BUILDDIR); tests/run-check runs with BUILDDIR=build/valgrind, so the
# wrappers come first in PATH, and sets JQ_VALGRIND_LOG: each process logs to
# $JQ_VALGRIND_LOG.PROGRAM.PID, empty unless valgrind found an error or a definite or indirect
# leak, and any non-empty log fails the run like a sanitizer report.
# Four tests skip themselves there (not_under_valgrind in tests/test_helper/common.bash): two of
# 200 jobs (800 jq-take/jq-put start-ups, ~10 min each), the 1 GiB job and result, and 2 s
# leases that a 20-50 times slower jq-run may let lapse.  Files not in the subset: faults and
# leases (kill -9, lease timing), cli and completion (options only).
VALGRIND = valgrind
VALGRIND_FLAGS = --error-exitcode=87 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	-q --num-callers=30
VALGRIND_TESTS = take-put serve stat protocol confine distrust run
VALGRINDDIR = build/valgrind

valgrind: all $(UNIT_BINS) $(BUILDDIR)/fdprobe
	@rm -rf $(VALGRINDDIR) && mkdir -p $(VALGRINDDIR)
	@ln -s "$(abspath $(BUILDDIR))/fdprobe" $(VALGRINDDIR)/fdprobe
	@for p in $(PROGS) $(UNITS); do \
	    { echo '#!/bin/sh'; \
	      echo "# $$p under valgrind; generated by make valgrind"; \
	      echo 'exec $(VALGRIND) $(VALGRIND_FLAGS) $${JQ_VALGRIND_LOG:+"--log-file=$$JQ_VALGRIND_LOG.'"$$p"'.%p"} "$(abspath $(BUILDDIR))/'"$$p"'" "$$@"'; \
	    } >$(VALGRINDDIR)/$$p && chmod +x $(VALGRINDDIR)/$$p || exit 1; done
	@BUILDDIR=$(VALGRINDDIR) TESTS="$${TESTS:-$(VALGRIND_TESTS)}" \
	    BATS_TEST_TIMEOUT=$${BATS_TEST_TIMEOUT:-600} sh tests/run-check

.PHONY: valgrind

# ---- static analysis ----
# make analyze: clang's static analyzer (scan-build, Debian clang-tools-14) over every program, in
# its own build directory; it fails when the analyzer reports anything and keeps the HTML reports
# in build/analyze/report.
SCAN_BUILD = scan-build
ANALYZEDIR = build/analyze

analyze:
	@rm -rf $(ANALYZEDIR)
	$(SCAN_BUILD) --status-bugs -o $(ANALYZEDIR)/report $(MAKE) -s BUILDDIR=$(ANALYZEDIR) all

.PHONY: analyze

# ---- release ----
# make dist: jq-$(VERSION).tar.gz, every file git tracks (as it is in the work tree) under
# jq-$(VERSION)/, in name order, owned by root, so that the same tree makes the same list.
# VERSION at the top is the one place the version is written: it reaches the programs as
# JQ_VERSION, and every tool's --version prints it.  tests/dist.bats builds the tarball in a
# clean directory and runs make check there (the unit tests and a small TESTS subset).
# DISTDIR is where the tarball goes (default: here).  make version prints VERSION.
DIST = jq-$(VERSION)
DISTDIR = .
DISTFILE = $(DISTDIR)/$(DIST).tar.gz

dist:
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { \
	    echo "make dist: not a git work tree: the tarball holds the files git tracks" >&2; \
	    exit 2; }
	rm -f $(DISTFILE) $(DISTFILE).list $(DISTFILE).tar
	git ls-files -z >$(DISTFILE).list
	tar --null -T $(DISTFILE).list --sort=name --owner=0 --group=0 --numeric-owner \
	    --transform 's,^,$(DIST)/,S' -cf $(DISTFILE).tar
	gzip -9n <$(DISTFILE).tar >$(DISTFILE).tmp
	rm -f $(DISTFILE).list $(DISTFILE).tar
	mv $(DISTFILE).tmp $(DISTFILE)
	@echo "make dist: $(DISTFILE)"

version:
	@echo $(VERSION)

.PHONY: dist version
