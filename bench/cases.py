"""The measured cases: what load goes where.

D   starts sent directly to the engine, each with a new businessKey
G   the same starts through the gateway to the same engine
R   replays of recorded keys through the gateway, with the replay
    authorization check on (R_check, as configured by default: the engine's
    answer is cached for a few seconds), on without that cache (R_nocache, an
    engine read on every replay) and off (R_nocheck)
S   new starts through the gateway to the instant engine stub
L   pgbench running the gateway's reserve and record SQL: the database limit
W   wrk straight at the stub: the load generator's own ceiling
DP  D, to the engine that keeps its data in PostgreSQL instead of H2
GP  G, through the gateway to that engine
G10M, S10M, D10M  G, S and D again once the table holds the bulk-loaded rows:
    S10M shows the table's effect without the engine's cost on top, D10M how
    much the engine itself drifted in the meantime
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from bench import load
from bench import pgbench
from bench.figures import LoadFigures
from bench.servers import Engine
from bench.stack import ENGINE_GATEWAY
from bench.stack import ENGINE_ON_POSTGRES_GATEWAY
from bench.stack import NO_CACHE_GATEWAY
from bench.stack import NO_CHECK_GATEWAY
from bench.stack import STUB_GATEWAY
from bench.stack import Stack

REPLAY_PREFIX = "replay"


@dataclasses.dataclass(frozen=True)
class Context:
    """What a case needs besides its concurrency: the stack and its scratch."""

    stack: Stack
    workdir: Path
    replay_keys: int


# a case runs with (context, connections, seconds, a tag unique to the run)
Runner = Callable[[Context, int, float, str], LoadFigures]


@dataclasses.dataclass(frozen=True)
class Case:
    """One measured case."""

    name: str
    description: str
    run: Runner


def _direct(engine: Callable[[Stack], Engine]) -> Runner:
    def run(
        context: Context, connections: int, seconds: float, tag: str
    ) -> LoadFigures:
        base = engine(context.stack).url.removesuffix("/engine-rest")
        target = load.new_keys(base, tag)
        return load.run_wrk(target, connections, seconds, context.stack.pinning.others)

    return run


def _through(gateway: str) -> Runner:
    def run(
        context: Context, connections: int, seconds: float, tag: str
    ) -> LoadFigures:
        target = load.new_keys(context.stack.gateways[gateway].url, tag)
        return load.run_wrk(target, connections, seconds, context.stack.pinning.others)

    return run


def _replays(gateway: str) -> Runner:
    def run(
        context: Context, connections: int, seconds: float, tag: str
    ) -> LoadFigures:
        url = context.stack.gateways[gateway].url
        target = load.replays(url, REPLAY_PREFIX, context.replay_keys)
        return load.run_wrk(target, connections, seconds, context.stack.pinning.others)

    return run


def _stub_direct(
    context: Context, connections: int, seconds: float, tag: str
) -> LoadFigures:
    target = load.new_keys(context.stack.stub.url.removesuffix("/engine-rest"), tag)
    return load.run_wrk(target, connections, seconds, context.stack.pinning.others)


def _database(
    context: Context, connections: int, seconds: float, tag: str
) -> LoadFigures:
    return pgbench.run_pgbench(
        context.stack.database.url,
        connections,
        seconds,
        cpus=context.stack.pinning.others,
        workdir=context.workdir / "pgbench",
        tag=tag,
    )


D = Case("D", "direct to the engine, new keys", _direct(lambda stack: stack.engine))
G = Case("G", "through the gateway to the engine, new keys", _through(ENGINE_GATEWAY))
R_CHECK = Case("R_check", "replays, authorization check on", _replays(ENGINE_GATEWAY))
R_NOCACHE = Case(
    "R_nocache",
    "replays, authorization check on, no cache",
    _replays(NO_CACHE_GATEWAY),
)
R_NOCHECK = Case(
    "R_nocheck", "replays, authorization check off", _replays(NO_CHECK_GATEWAY)
)
S = Case("S", "through the gateway to the instant stub", _through(STUB_GATEWAY))
L = Case("L", "pgbench: the gateway's reserve + record SQL", _database)
W = Case("W", "wrk straight at the stub: wrk's ceiling", _stub_direct)
G10M = Case("G10M", "G with the bulk-loaded table", _through(ENGINE_GATEWAY))
S10M = Case("S10M", "S with the bulk-loaded table", _through(STUB_GATEWAY))
D10M = Case(
    "D10M",
    "D at the same time as G10M (engine drift)",
    _direct(lambda stack: stack.engine),
)
DP = Case(
    "DP",
    "direct to the engine on PostgreSQL, new keys",
    _direct(lambda stack: stack.engine_on_postgres),
)
GP = Case(
    "GP",
    "through the gateway to the engine on PostgreSQL, new keys",
    _through(ENGINE_ON_POSTGRES_GATEWAY),
)

BEFORE_BULK = (D, G, DP, GP, R_CHECK, R_NOCACHE, R_NOCHECK, S, L, W)
AFTER_BULK = (G10M, S10M, D10M)
ALL = BEFORE_BULK + AFTER_BULK
