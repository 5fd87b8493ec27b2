#!/usr/bin/env python3
"""compare.py: the measuring half of benches/compare.sh (run that, not this).

Runs real third-party WASI programs (experiments/thirdparty/build/) on four
runners and prints markdown tables of per-call and first-call times:

  native    the native build of the same source, one process per call
            (fork + exec + run, timed from here)
  engine    this engine, over HTTP: each (program, input) deployed from a real
            registry under its own name, invoked through the provider route
            POST /function/NAME with the input as the raw body (stdin), on one
            keep-alive connection; time from sending the request to the last
            byte of the answer
  wasmtime  wasmtime's Python package, in this process: the module compiled
            once; per call a new Store, WASI context and instance, `_start`
  wasm3     the wasm3 interpreter (benches/wasm3_runner), timed inside its
            process: per call a new runtime, the module parsed and loaded,
            `_start` (wasm3 shares nothing between runtimes)

Each call is timed twice: wall clock, and CPU time (on a shared machine the
steadier of the two): native, the child's rusage (user + system, from fork
to exit); engine, the sum over the engine's threads of their run time
(/proc/PID/task/*/schedstat, thread by thread) from sending the request to
reading the answer (the HTTP parsing and answering included, the client's
not);
wasmtime, this process's CPU time around the call (Python's share of the
call included); wasm3, the runner's process CPU time around the run.

First call: engine, the first invoke after the deploy's 200 (the deploy's
own time is printed too); wasmtime, a fresh Engine: compile + instantiate +
run; wasm3 and native, the first call of the run (their calls all start from
scratch anyway). Per call: the median of ROUNDS further calls. The runners
take turns call by call, in an order rotated every round, so that the load
of a shared machine falls on all of them alike.

Every runner's output, on the first call and in the first round, is
compared with the native build's, byte for byte (the engine's answer is stdout less one trailing newline, docs/abi.md); a
runner whose output differs is marked in the table rather than timed as if
it did the same work.

Environment (set by compare.sh): COMPARE_WORK (a scratch directory),
COMPARE_PROGRAMS (the build directory), ENGINE_URL, PROVIDER_URL, ENGINE_PID,
REGISTRY (host:port the modules were pushed to, as thirdparty/NAME:v1),
WASM3_RUNNER (empty when wasm3 is not available), ROUNDS, SIZES.
"""

import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.parse

try:
    import wasmtime
except ImportError:  # compare.sh installs it; without it the column is empty
    wasmtime = None

WORK = os.environ["COMPARE_WORK"]
PROGRAMS_DIR = os.environ["COMPARE_PROGRAMS"]
ENGINE_URL = os.environ["ENGINE_URL"]
PROVIDER_URL = os.environ["PROVIDER_URL"]
REGISTRY = os.environ["REGISTRY"]
ENGINE_PID = int(os.environ["ENGINE_PID"])
WASM3_RUNNER = os.environ.get("WASM3_RUNNER", "")
ROUNDS = int(os.environ.get("ROUNDS", "9"))
SIZES = [int(size) for size in os.environ.get("SIZES", "1024 32768 1048576").split()]

PROGRAMS = ["pulldown-cmark", "hoedown", "htmlq", "jsonxf"]


# ---------------------------------------------------------------- inputs
# Deterministic documents: a fixed seed, fixed fragments, cut at a line
# boundary to at most the requested size.


def markdown_document(size):
    rng = random.Random(29)
    words = ("engine wasm interpreter edge board function registry deploy invoke "
             "latency memory fuel module instance store linker translate").split()
    parts = []
    total = 0
    section = 0
    while total < size:
        section += 1
        sentence = " ".join(rng.choice(words) for _ in range(12))
        block = "\n".join([
            f"## Section {section}: *{rng.choice(words)}* and **{rng.choice(words)}**",
            "",
            f"{sentence.capitalize()}, with `inline code`, a [link](https://example.org/{section}?a=1&b=2) "
            f"and an autolink <https://example.com/{section}>. Entities &amp; &copy; &#x1F980; _under_ ~~strike~~.",
            "",
            f"- item {section}.1 with *emphasis*\n- item {section}.2\n  1. nested **strong**\n  2. nested `code`",
            "",
            f"> quoted {sentence}\n> second line with <b>inline HTML</b>",
            "",
            f"| column a | column b | column c |\n|---|:---:|---:|\n| {section} | {rng.choice(words)} | {rng.randint(0, 99999)} |",
            "",
            f"```rust\nfn section_{section}() -> u32 {{ {rng.randint(0, 1000)} < {rng.randint(0, 1000)} as u32 }}\n```",
            "",
            "",
        ])
        parts.append(block)
        total += len(block.encode())
    return cut("".join(parts), size)


def html_document(size):
    rng = random.Random(29)
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu "
             "caf\u00e9 \u65e5\u672c \u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac").split()
    head = "<!DOCTYPE html>\n<html><head><title>compare</title><style>p > a { color: red }</style></head><body>\n"
    tail = "</body></html>\n"
    parts = [head]
    total = len(head.encode()) + len(tail.encode())
    row = 0
    while True:
        row += 1
        text = " ".join(rng.choice(words) for _ in range(10))
        block = (
            f'<div class="card c{row % 7}" id="card-{row}"><h2>Card {row}</h2>'
            f'<p>{text} &amp; &lt;escaped&gt; <a href="/item/{row}?q={rng.randint(0, 999)}&amp;r=1">link</a> '
            f'<b>bold <i>both</b> italic</i></p>'
            f'<ul><li>one<li>two {rng.choice(words)}</ul>'
            f'<table><tr><td>{row}<td>{rng.randint(0, 99999)}</table>'
            f'<img src="img/{row}.png" alt="{rng.choice(words)}"><br></div>\n'
        )
        if total + len(block.encode()) > size:
            break
        parts.append(block)
        total += len(block.encode())
    parts.append(tail)
    return "".join(parts)


def json_document(size):
    # A top-level array: the engine passes a non-object body's function name
    # as argv[0], as the other runners are given.
    rng = random.Random(29)
    words = ("north south east west caf\u00e9 na\u00efve \u00fcber \u65e5\u672c "
             "quote\"d back\\slash tab\tnewline\n").split(" ")
    records = []
    total = 2
    index = 0
    while True:
        index += 1
        record = {
            "id": index,
            "name": " ".join(rng.choice(words) for _ in range(4)),
            "score": rng.randint(-100000, 100000) / 100,
            "active": index % 3 == 0,
            "tags": [rng.choice(words) for _ in range(3)],
            "nested": {"depth": [1, [2, [3, None]]], "unicode": "\u00e9\u4e2d\U0001F980"},
        }
        text = json.dumps(record, ensure_ascii=index % 2 == 0, separators=(",", ":"))
        length = len(text.encode()) + 1
        if total + length > size:
            break
        records.append(text)
        total += length
    return "[" + ",".join(records) + "]\n"


def cut(text, size):
    data = text.encode()
    if len(data) <= size:
        return text
    data = data[:size]
    data = data[: data.rfind(b"\n") + 1]
    return data.decode()


DOCUMENTS = {
    "pulldown-cmark": markdown_document,
    "hoedown": markdown_document,
    "htmlq": html_document,
    "jsonxf": json_document,
}


def size_label(size):
    return f"{size // 1048576} MB" if size >= 1048576 else f"{size // 1024} KB"


# ---------------------------------------------------------------- runners


class Case:
    def __init__(self, program, size):
        self.program = program
        self.size = size
        self.name = f"{program}-{size}"
        self.input_path = os.path.join(WORK, f"{self.name}.in")
        with open(self.input_path, "w", encoding="utf-8") as file:
            file.write(DOCUMENTS[program](size))
        with open(self.input_path, "rb") as file:
            self.body = file.read()
        self.wasm_path = os.path.join(PROGRAMS_DIR, f"{program}.wasm")
        self.native_path = os.path.join(PROGRAMS_DIR, program)
        self.expected = None  # the native build's stdout
        self.times = {}  # runner -> list of per-call seconds
        self.first = {}  # runner -> first-call seconds
        self.differs = set()
        self.deploy_seconds = None
        self.wasmtime_module = None


def output_path(case, runner):
    return os.path.join(WORK, f"{case.name}.{runner}.out")


def run_native(case):
    out = output_path(case, "native")
    with open(case.input_path, "rb") as stdin, open(out, "wb") as stdout:
        start = time.perf_counter()
        child = subprocess.Popen([case.name], executable=case.native_path, stdin=stdin,
                                 stdout=stdout, stderr=subprocess.DEVNULL, env={})
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"native {case.program} failed on {case.name} with {child.returncode}")
    with open(out, "rb") as file:
        return elapsed, usage.ru_utime + usage.ru_stime, file.read()


def engine_thread_times():
    """Each engine thread's run time so far, in nanoseconds
    (/proc/PID/task/TID/schedstat), by thread id."""
    times = {}
    for thread in os.listdir(f"/proc/{ENGINE_PID}/task"):
        try:
            with open(f"/proc/{ENGINE_PID}/task/{thread}/schedstat") as file:
                times[thread] = int(file.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # the thread ended meanwhile
    return times


def engine_cpu_seconds(before, after):
    """The engine's CPU time between two readings: the threads alive at both
    by their difference, a thread started between them by all of its time.
    A thread that ended between them is left out (its time can no longer be
    read; summing totals instead would subtract it): the threads that serve
    an invocation, its connection's and the workers, outlive it; a deploy's
    thread, ending just after its 200, does not."""
    total = 0
    for thread, nanoseconds in after.items():
        total += nanoseconds - before.get(thread, 0)
    return total / 1e9


class EngineClient:
    def __init__(self):
        self.provider = urllib.parse.urlsplit(PROVIDER_URL)
        self.connection = None

    def post(self, url, path, body, content_type):
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": content_type})
            reply = connection.getresponse()
            return reply.status, reply.read()
        finally:
            connection.close()

    def deploy(self, case):
        body = json.dumps({
            "function_name": case.name,
            "function_image": f"{REGISTRY}/thirdparty/{case.program}:v1",
            "wasi_cap": True,
            "timeout_ms": 600000,
            "memory_limit_mb": 1024,
        })
        start = time.perf_counter()
        status, answer = self.post(ENGINE_URL, "/function/deploy", body, "application/json")
        elapsed = time.perf_counter() - start
        if status != 200:
            sys.exit(f"deploy of {case.name} answered {status}: {answer[:500]!r}")
        return elapsed

    def connect(self):
        # Connecting is not timed: a FaaS front end keeps its connections.
        if self.connection is not None:
            self.connection.close()
        self.connection = http.client.HTTPConnection(
            self.provider.hostname, self.provider.port, timeout=600)
        self.connection.connect()

    def invoke(self, case):
        if self.connection is None:
            self.connect()
        for attempt in (1, 2):
            try:
                threads_before = engine_thread_times()
                start = time.perf_counter()
                self.connection.request("POST", f"/function/{case.name}", body=case.body,
                                        headers={"Content-Type": "text/plain"})
                reply = self.connection.getresponse()
                answer = reply.read()
                elapsed = time.perf_counter() - start
                cpu = engine_cpu_seconds(threads_before, engine_thread_times())
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The engine closes keep-alive connections left idle (the
                # other runners' turns can take seconds): connect again,
                # untimed, and send the call again.
                if attempt == 2:
                    raise
                self.connect()
        if reply.will_close:
            self.connection.close()
            self.connection = None
        if reply.status != 200:
            sys.exit(f"engine: {case.name} answered {reply.status}: {answer[:500]!r}")
        return elapsed, cpu, answer


def wasmtime_call(case, module, engine, linker):
    out = output_path(case, "wasmtime")
    start_cpu = time.process_time()
    start = time.perf_counter()
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    config.argv = [case.name]
    config.stdin_file = case.input_path
    config.stdout_file = out
    store.set_wasi(config)
    instance = linker.instantiate(store, module)
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exit_trap:
        if exit_trap.code != 0:
            sys.exit(f"wasmtime: {case.name} exited with {exit_trap.code}")
    elapsed = time.perf_counter() - start
    del instance, store
    cpu = time.process_time() - start_cpu
    with open(out, "rb") as file:
        return elapsed, cpu, file.read()


class Wasmtime:
    def __init__(self):
        self.engine = wasmtime.Engine()
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()

    def first(self, case):
        # A fresh Engine, so nothing compiled for another case is reused.
        # Cranelift compiles on several threads: the process's CPU time
        # counts them all.
        start_cpu = time.process_time()
        start = time.perf_counter()
        engine = wasmtime.Engine()
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        module = wasmtime.Module.from_file(engine, case.wasm_path)
        compile_seconds = time.perf_counter() - start
        compile_cpu = time.process_time() - start_cpu
        call_seconds, call_cpu, output = wasmtime_call(case, module, engine, linker)
        # The steady calls use the shared engine and a module compiled once.
        case.wasmtime_module = wasmtime.Module.from_file(self.engine, case.wasm_path)
        return compile_seconds + call_seconds, compile_cpu + call_cpu, output

    def call(self, case):
        return wasmtime_call(case, case.wasmtime_module, self.engine, self.linker)


def run_wasm3(case):
    out = output_path(case, "wasm3")
    result = subprocess.run([WASM3_RUNNER, case.wasm_path, case.input_path, out, case.name, "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={})
    lines = result.stderr.decode(errors="replace").splitlines()
    runs = [line for line in lines if line.startswith("run ")]
    if result.returncode != 0 or not runs:
        return None, None, "\n".join(lines[-5:])
    _, wall_ns, cpu_ns = runs[0].split()
    with open(out, "rb") as file:
        return int(wall_ns) / 1e9, int(cpu_ns) / 1e9, file.read()


# ---------------------------------------------------------------- the run


def main():
    cases = [Case(program, size) for program in PROGRAMS for size in SIZES]
    engine = EngineClient()
    wasmtime_runner = Wasmtime() if wasmtime else None
    wasm3_failures = {}

    def strip_newline(data):
        return data[:-1] if data.endswith(b"\n") else data

    def check(case, runner, output):
        if runner == "engine":
            same = output == strip_newline(case.expected)
        else:
            same = output == case.expected
        if not same:
            case.differs.add(runner)
            print(f"  {case.name}: {runner}'s output ({len(output)} bytes) differs from the native "
                  f"build's ({len(case.expected)} bytes)", file=sys.stderr)

    runners = ["native", "engine"]
    if wasmtime_runner:
        runners.append("wasmtime")
    if WASM3_RUNNER:
        runners.append("wasm3")

    def call(case, runner, first):
        if runner == "native":
            return run_native(case)
        if runner == "engine":
            if first:
                case.deploy_seconds = engine.deploy(case)
            return engine.invoke(case)
        if runner == "wasmtime":
            return wasmtime_runner.first(case) if first else wasmtime_runner.call(case)
        seconds, cpu, output = run_wasm3(case)
        if seconds is None:
            wasm3_failures[case.name] = output
        return seconds, cpu, output

    print(f"== first calls ({len(cases)} cases)", file=sys.stderr)
    for index, case in enumerate(cases):
        order = runners[index % len(runners):] + runners[: index % len(runners)]
        if "native" in order:  # the reference output first
            order.remove("native")
            order.insert(0, "native")
        for runner in order:
            seconds, cpu, output = call(case, runner, first=True)
            if runner == "native":
                case.expected = output
            if seconds is None:
                continue
            case.first[runner] = (seconds, cpu)
            check(case, runner, output)
        print(f"  {case.name}: {len(case.body)} bytes in, {len(case.expected)} bytes out", file=sys.stderr)

    for round_index in range(ROUNDS):
        print(f"== round {round_index + 1} of {ROUNDS}", file=sys.stderr)
        for index, case in enumerate(cases):
            shift = (round_index + index) % len(runners)
            for runner in runners[shift:] + runners[:shift]:
                if runner == "wasm3" and case.name in wasm3_failures:
                    continue
                seconds, cpu, output = call(case, runner, first=False)
                if seconds is None:
                    continue
                case.times.setdefault(runner, []).append((seconds, cpu))
                if round_index == 0:
                    check(case, runner, output)

    report(cases, runners, wasm3_failures)


def milliseconds(seconds):
    return f"{seconds * 1000:.3f}"


WALL, CPU = 0, 1


def report(cases, runners, wasm3_failures):
    columns = [r for r in ["native", "engine", "wasmtime", "wasm3"] if r in runners]
    others = [r for r in ["wasmtime", "wasm3", "native"] if r in columns]

    def failed(case, runner):
        if runner in case.differs:
            return "output differs"
        if runner == "wasm3" and case.name in wasm3_failures:
            return "failed"
        return None

    def median(case, runner, kind):
        values = [pair[kind] for pair in case.times.get(runner, [])]
        return statistics.median(values) if values else None

    def per_call_table(kind, title):
        print()
        print(title)
        print()
        header = ["program", "input"] + columns + [f"engine / {other}" for other in others]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        ratios = {other: [] for other in others}
        for case in cases:
            row = [case.program, size_label(case.size)]
            for runner in columns:
                value = median(case, runner, kind)
                row.append(failed(case, runner) or (milliseconds(value) if value is not None else "n/a"))
            engine_median = median(case, "engine", kind)
            for other in others:
                other_median = median(case, other, kind)
                if engine_median and other_median and not failed(case, "engine") and not failed(case, other):
                    ratio = engine_median / other_median
                    ratios[other].append(ratio)
                    row.append(f"{ratio:.2f}x")
                else:
                    row.append("n/a")
            print("| " + " | ".join(row) + " |")
        print()
        for other, values in ratios.items():
            if values:
                print(f"- engine / {other}: geometric mean {statistics.geometric_mean(values):.2f}x "
                      f"over {len(values)} inputs (from {min(values):.2f}x to {max(values):.2f}x)")

    per_call_table(WALL, f"Per call, wall clock: median of {ROUNDS} calls, milliseconds")
    per_call_table(CPU, f"Per call, CPU time: median of {ROUNDS} calls, milliseconds")

    print()
    print("First call, milliseconds, wall clock / CPU time (engine: the first invoke after the "
          "deploy's 200; wasmtime: compile + instantiate + run in a fresh Engine; wasm3 and "
          "native: the first call of the run), the engine's deploy (wall clock), and the "
          "engine's first call over its per-call median (CPU time)")
    print()
    header = ["program", "input"] + columns + ["engine deploy", "engine first / per call"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for case in cases:
        row = [case.program, size_label(case.size)]
        for runner in columns:
            value = case.first.get(runner)
            row.append(failed(case, runner) or
                       (f"{milliseconds(value[WALL])} / {milliseconds(value[CPU])}" if value else "n/a"))
        row.append(milliseconds(case.deploy_seconds) if case.deploy_seconds is not None else "n/a")
        engine_first, engine_median = case.first.get("engine"), median(case, "engine", CPU)
        row.append(f"{engine_first[CPU] / engine_median:.2f}x" if engine_first and engine_median else "n/a")
        print("| " + " | ".join(row) + " |")
    if wasm3_failures:
        print()
        for name, message in wasm3_failures.items():
            print(f"- wasm3 failed on {name}: {message.strip()}")


if __name__ == "__main__":
    main()
