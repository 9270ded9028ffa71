# Enviromon: build the custom handler and the local SignalR stand-in, run the tests.
#   make                      build (build/enviromon-handler, build/signalr-standin)
#   make SANITIZER=address    the same code with ASan+UBSan, in build/address/
#   make test                 install what is missing, then run every test
#   make run                  the whole system live on this machine
#   make bench                the benchmarks (figures, not pass/fail)

CC ?= cc
SANITIZER ?=
BUILD := build
# -Wno-format-truncation: every snprintf here truncates on purpose (bounded copies).
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -MMD -MP -pthread -Wno-format-truncation
SANFLAGS :=

ifeq ($(SANITIZER),)
else ifeq ($(SANITIZER),address)
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  BUILD := build/address
else ifeq ($(SANITIZER),undefined)
  SANFLAGS := -fsanitize=undefined -fno-sanitize-recover=undefined
  BUILD := build/undefined
else
  $(error unknown SANITIZER '$(SANITIZER)': use address or undefined)
endif

CFLAGS ?=
CFLAGS += $(CFLAGS_BASE) $(SANFLAGS)
LDFLAGS += $(SANFLAGS) -pthread
LIBS := -lmicrohttpd -ljansson -lcurl -lcrypto -lm

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
HANDLER_MAIN := handler/main.c
LIB_SRC := $(filter-out $(HANDLER_MAIN),$(wildcard handler/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
STANDIN_MAIN := standin/main.c
STANDIN_SRC := $(filter-out $(STANDIN_MAIN),$(wildcard standin/*.c))
STANDIN_OBJ := $(STANDIN_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

HANDLER := $(BUILD)/enviromon-handler
STANDIN := $(BUILD)/signalr-standin
# Test and benchmark drivers of library modules (tests/tools/NAME_tool.c -> NAME-tool).
TOOLS := $(patsubst tests/tools/%_tool.c,$(BUILD)/%-tool,$(wildcard tests/tools/*_tool.c))

.SECONDARY:
.PHONY: all deps test unit integration bench run app start fuzz format clean
all: $(HANDLER) $(STANDIN) $(TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

# Each directory sees the base (common/) and its own headers only: the stand-in never includes
# the handler's. Unit tests and fuzz harnesses see all three.
$(BUILD)/common/%.o: INCLUDES := -Icommon
$(BUILD)/handler/%.o: INCLUDES := -Icommon -Ihandler
$(BUILD)/standin/%.o: INCLUDES := -Icommon -Istandin
$(BUILD)/tests/tools/%.o: INCLUDES := -Icommon -Ihandler
$(BUILD)/tests/unit/%.o: INCLUDES := -Icommon -Ihandler -Istandin

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libenviromon.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(HANDLER): $(BUILD)/handler/main.o $(BUILD)/libenviromon.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/%-tool: $(BUILD)/tests/tools/%_tool.o $(BUILD)/libenviromon.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/libstandin.a: $(STANDIN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(STANDIN): $(BUILD)/standin/main.o $(BUILD)/libstandin.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libstandin.a $(BUILD)/libenviromon.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LIBS) -lcmocka -o $@

# Installs what is missing on a fresh Debian 12 machine (apt packages, npm ci). Idempotent.
deps:
	@tools/install-deps.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

NODE_TESTS = $(shell find tests -name '*.test.mjs' | sort)
# The sanitizer pass checks the C code; packaging (tests/deploy) and `make run` (tests/run) use the
# release build, so they run in the plain pass only.
ifneq ($(SANITIZER),)
  NODE_TESTS := $(filter-out tests/deploy/% tests/run/%,$(NODE_TESTS))
endif
integration: all
	ENVIROMON_BUILD=$(abspath $(BUILD)) node --test --test-concurrency=1 $(NODE_TESTS)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

bench: deps all
	ENVIROMON_BUILD=$(abspath $(BUILD)) node tests/bench/run.mjs
	ENVIROMON_BUILD=$(abspath $(BUILD)) node tests/bench/rss.mjs
	ENVIROMON_BUILD=$(abspath $(BUILD)) node tests/bench/dashboard.mjs
	ENVIROMON_BUILD=$(abspath $(BUILD)) node tests/bench/history.mjs

run: deps all
	@tools/run-local.sh

fuzz:
	@mkdir -p build/fuzz
	@set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Icommon -Ihandler -Istandin $$f \
	    $(COMMON_SRC) $(LIB_SRC) $(STANDIN_SRC) $(LIBS) -o build/fuzz/$$n; \
	  mkdir -p build/fuzz/corpus/$$n; cp tests/fuzz/corpus/$$n/* build/fuzz/corpus/$$n/ 2>/dev/null || true; \
	  build/fuzz/$$n -max_total_time=$${FUZZ_SECONDS:-20} -rss_limit_mb=1024 build/fuzz/corpus/$$n 2>&1 | tail -3; done

# The Functions app folder: host.json, the function folders, the handler and its libraries.
app: all
	deploy/stage-app.sh $(HANDLER) app

# func start in the staged folder (needs Azure Functions Core Tools; make run needs nothing of Azure).
start: app
	deploy/start.sh app

format:
	clang-format -i common/*.[ch] handler/*.[ch] standin/*.[ch] tests/unit/*.c tests/fuzz/*.c tests/tools/*.c

clean:
	rm -rf build app

-include $(shell find $(BUILD) -name '*.d' -type f -not -path '*/rootfs/*' 2>/dev/null)
