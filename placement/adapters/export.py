"""Export a plan as a bash script that carries it out with a real tool.

Targets: `virsh` (libvirt), `pcs` and `crm` (Pacemaker), `proxmox` (`qm` / `pct`), and
`shell` (a command of the user's, called as `HOOK start GUEST HOST`). The script:

- stops the guests the plan stops, then runs every start and migration at its planned
  offset from the moment the timeline begins, each in the background;
- after each start waits until the guest is ready (`--ready-check state`: the tool says
  it runs; `agent`: the guest agent answers; `command`: a command of the user's exits 0),
  at most `--ready-timeout` seconds; migrations wait until the guest runs on the target;
- logs a failed start or migration and goes on with the guests that do not depend on it;
  a guest whose `after` dependency failed is not started and is reported;
- skips a start whose guest already runs on its target, so it can be run again;
- has a dry-run mode (`-n`) printing each command, and `--time-scale F` to compress time;
- exits 0 when every action succeeded, 1 otherwise, listing what failed or was skipped.

Every name is checked against the target's rules (`placement.adapters.names`) and reaches
the script only as one shell word quoted by `shlex.quote`.
"""

from __future__ import annotations

import attrs

from placement.adapters.names import TARGETS, XML_ID, plan_name_errors, quote
from placement.errors import InputError, InvalidInputError
from placement.model import HostState, Problem
from placement.plan import Action, Plan, Status

READY_CHECKS = ("state", "agent", "command")


class ExportError(InvalidInputError):
    """A plan that cannot be exported safely to the chosen target; names the guest or host."""


@attrs.frozen
class ExportOptions:
    """How the script checks readiness, and target settings.

    `ready_check`: state, agent or command; `ready_command`: for `command`, a shell
    command run by `bash -c` with the guest as $1 and the host as $2, ready when it exits
    0. `ready_timeout_s`, `poll_s`: seconds. `virsh_uri`: the libvirt URI of a host,
    `{host}` standing for its name. `hook`: the command the `shell` target calls.
    """

    ready_check: str = attrs.field(default="state", validator=attrs.validators.in_(READY_CHECKS))
    ready_command: str | None = None
    ready_timeout_s: int = 300
    poll_s: int = 5
    virsh_uri: str = "qemu+ssh://{host}/system"
    hook: str = "./placement-hook"


_PRELUDE = r"""set -u
set -o pipefail
export LC_ALL=C

DRY_RUN=0
TIME_SCALE=1
TIME_SCALE_GIVEN=0
READY_TIMEOUT=@READY_TIMEOUT@
POLL_S=@POLL_S@
READY_CHECK=@READY_CHECK@
READY_COMMAND=@READY_COMMAND@
@TARGET_SETTINGS@
usage() {
    cat <<'USAGE'
Usage: SCRIPT [-n|--dry-run] [--time-scale F] [--ready-timeout S] [--poll S]
              [--ready-check state|agent|command] [--ready-command CMD]@TARGET_USAGE@
  -n, --dry-run      print every command instead of running it (time scale 0 unless given)
  --time-scale F     multiply every planned offset, poll and timeout by F (rehearsals)
  --ready-command    run as: bash -c CMD ready-check GUEST HOST; ready when it exits 0
Exit status: 0 when every action succeeded, 1 otherwise.
USAGE
}
while [ $# -gt 0 ]; do
    case "$1" in
        -n|--dry-run) DRY_RUN=1 ;;
        --time-scale) TIME_SCALE=${2-}; TIME_SCALE_GIVEN=1; shift ;;
        --ready-timeout) READY_TIMEOUT=${2-}; shift ;;
        --poll) POLL_S=${2-}; shift ;;
        --ready-check) READY_CHECK=${2-}; shift ;;
        --ready-command) READY_COMMAND=${2-}; READY_CHECK=command; shift ;;
@TARGET_OPTIONS@        -h|--help) usage; exit 0 ;;
        *) printf 'unknown option: %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$DRY_RUN" = 1 ] && [ "$TIME_SCALE_GIVEN" = 0 ]; then TIME_SCALE=0; fi
for number in "$TIME_SCALE" "$READY_TIMEOUT" "$POLL_S"; do
    if ! [[ $number =~ ^[0-9]+([.][0-9]+)?$ ]]; then
        printf 'not a number: %s\n' "$number" >&2; exit 2
    fi
done
case "$READY_CHECK" in
    state|agent) ;;
    command)
        if [ -z "$READY_COMMAND" ]; then
            echo '--ready-check command needs --ready-command' >&2
            exit 2
        fi ;;
    *) printf 'unknown ready check: %s\n' "$READY_CHECK" >&2; exit 2 ;;
esac

STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/placement-run.XXXXXX") || exit 1
trap 'rm -rf -- "$STATE_DIR"' EXIT
now() { printf '%s' "${EPOCHREALTIME:-$(date +%s)}"; }
START=$(now)

log() {
    local elapsed
    elapsed=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    printf '%s [+%ss] %s\n' "$(date '+%H:%M:%S')" "$elapsed" "$*"
}

# Run one tool command, or print it in a dry run. Every argument is one word.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        log "dry-run: $(printf '%q ' "$@")"
        return 0
    fi
    log "run: $(printf '%q ' "$@")"
    "$@"
}

# Sleep until OFFSET (planned seconds, scaled) after the timeline began.
sleep_until() {
    local delay
    delay=$(awk -v s="$START" -v o="$1" -v f="$TIME_SCALE" -v n="$(now)" \
        'BEGIN { d = s + o * f - n; if (d > 0) printf "%.3f", d; else print 0 }')
    if [ "$delay" != 0 ]; then sleep "$delay"; fi
}

# Sleep SECONDS (scaled), at least a little so that polling loops do not spin.
pause() {
    sleep "$(awk -v s="$1" -v f="$TIME_SCALE" \
        'BEGIN { d = s * f; if (d < 0.02) d = 0.02; printf "%.3f", d }')"
}

scaled_deadline() {
    awk -v n="$(now)" -v s="$1" -v f="$TIME_SCALE" 'BEGIN { printf "%.3f", n + s * f }'
}

past() {
    awk -v n="$(now)" -v d="$1" 'BEGIN { exit !(n >= d) }'
}

# Record a guest's outcome: ok, failed or skipped, with a reason.
finish() {
    printf '%s\t%s\n' "$2" "${3-}" > "$STATE_DIR/$1.tmp" && mv "$STATE_DIR/$1.tmp" "$STATE_DIR/$1"
}

# Wait for guest number $1 to have an outcome; print it.
outcome_of() {
    while [ ! -e "$STATE_DIR/$1" ]; do pause 0.5; done
    cut -f1 "$STATE_DIR/$1"
}

ready_check() {
    case "$READY_CHECK" in
        state) t_is_running "$1" "$2" ;;
        agent) t_agent_ready "$1" "$2" ;;
        command) bash -c "$READY_COMMAND" ready-check "$1" "$2" ;;
    esac
}

# Wait until GUEST is ready on HOST (with CHECK, default the chosen ready check).
wait_ready() {
    local guest=$1 host=$2 check=${3-ready_check} deadline
    if [ "$DRY_RUN" = 1 ]; then
        log "dry-run: wait up to ${READY_TIMEOUT}s for $guest on $host ($READY_CHECK)"
        return 0
    fi
    deadline=$(scaled_deadline "$READY_TIMEOUT")
    while true; do
        if "$check" "$guest" "$host" >/dev/null 2>&1; then return 0; fi
        if past "$deadline"; then return 1; fi
        pause "$POLL_S"
    done
}

do_start() {
    local idx=$1 guest=$2 host=$3 from=$4 from_down=$5
    if [ "$DRY_RUN" != 1 ] && t_is_running "$guest" "$host" >/dev/null 2>&1; then
        log "$guest already runs on $host: start skipped"
        finish "$idx" ok "already running"
        return
    fi
    if ! t_start "$guest" "$host" "$from" "$from_down"; then
        log "FAILED: start of $guest on $host"
        finish "$idx" failed "start command failed"
        return
    fi
    if wait_ready "$guest" "$host"; then
        log "$guest is ready on $host"
        t_started "$guest" "$host"
        finish "$idx" ok
    else
        log "FAILED: $guest not ready on $host after ${READY_TIMEOUT}s"
        t_started "$guest" "$host"
        finish "$idx" failed "not ready after ${READY_TIMEOUT}s"
    fi
}

do_migrate() {
    local idx=$1 guest=$2 host=$3 from=$4
    if [ "$DRY_RUN" != 1 ] && t_is_running "$guest" "$host" >/dev/null 2>&1; then
        log "$guest already runs on $host: migration skipped"
        finish "$idx" ok "already there"
        return
    fi
    if ! t_migrate "$guest" "$from" "$host"; then
        log "FAILED: migration of $guest from $from to $host"
        finish "$idx" failed "migrate command failed"
        return
    fi
    if wait_ready "$guest" "$host" t_is_running; then
        log "$guest runs on $host"
        t_migrated "$guest" "$host"
        finish "$idx" ok
    else
        log "FAILED: $guest not running on $host after ${READY_TIMEOUT}s"
        t_migrated "$guest" "$host"
        finish "$idx" failed "not on $host after ${READY_TIMEOUT}s"
    fi
}

do_stop() {
    local idx=$1 guest=$2 host=$3
    if t_stop "$guest" "$host"; then
        finish "$idx" ok
    else
        log "FAILED: stop of $guest on $host"
        finish "$idx" failed "stop command failed"
    fi
}

# job IDX OFFSET ACTION GUEST HOST FROM FROM_DOWN [DEPENDENCY_IDX...]
job() {
    local idx=$1 offset=$2 action=$3 guest=$4 host=$5 from=$6 from_down=$7 dep
    shift 7
    sleep_until "$offset"
    for dep in "$@"; do
        if [ "$(outcome_of "$dep")" != ok ]; then
            log "SKIPPED: $guest, because ${NAMES[$dep]} did not come up"
            finish "$idx" skipped "dependency ${NAMES[$dep]} did not come up"
            return
        fi
    done
    log "$action $guest -> $host (planned at +${offset}s)"
    case "$action" in
        start) do_start "$idx" "$guest" "$host" "$from" "$from_down" ;;
        migrate) do_migrate "$idx" "$guest" "$host" "$from" ;;
    esac
}

schedule() {
    if [ "$DRY_RUN" = 1 ]; then job "$@"; else job "$@" & fi
}

report() {
    local idx outcome reason failures=0
    echo
    echo "summary:"
    for idx in "${!NAMES[@]}"; do
        if [ -e "$STATE_DIR/$idx" ]; then
            IFS=$'\t' read -r outcome reason < "$STATE_DIR/$idx"
        else
            outcome=failed; reason="no outcome recorded"
        fi
        printf '  %-8s %s%s\n' "$outcome" "${NAMES[$idx]}" "${reason:+ ($reason)}"
        if [ "$outcome" != ok ]; then failures=$((failures + 1)); fi
    done
    if [ "$failures" -gt 0 ]; then
        printf '%s action(s) did not succeed\n' "$failures"
        return 1
    fi
    echo "every action succeeded"
}
"""

_VIRSH = r"""
# libvirt: one URI per host; a domain not defined on its new host is defined from
# XML_DIR/GUEST.xml when that file exists.
uri() { local template=$VIRSH_URI; printf '%s' "${template//"{host}"/"$1"}"; }
t_is_running() {
    [ "$(virsh -c "$(uri "$2")" domstate --domain "$1" 2>/dev/null | head -n 1)" = running ]
}
t_agent_ready() {
    virsh -c "$(uri "$2")" qemu-agent-command --domain "$1" '{"execute":"guest-ping"}'
}
t_start() {
    local guest=$1 host=$2
    if [ -n "$XML_DIR" ] && [ -f "$XML_DIR/$guest.xml" ] && { [ "$DRY_RUN" = 1 ] ||
        ! virsh -c "$(uri "$host")" dominfo --domain "$guest" >/dev/null 2>&1; }; then
        run virsh -c "$(uri "$host")" define --file "$XML_DIR/$guest.xml" || return 1
    fi
    run virsh -c "$(uri "$host")" start --domain "$guest"
}
t_started() { :; }
t_migrate() {
    run virsh -c "$(uri "$2")" migrate --live --persistent --undefinesource \
        --domain "$1" --desturi "$(uri "$3")"
}
t_migrated() { :; }
t_stop() { run virsh -c "$(uri "$2")" shutdown --domain "$1"; }
"""

_PACEMAKER_COMMON = r"""
# Pacemaker decides from the CIB; the script only changes the CIB. Where a resource runs
# is read with crm_resource, which ships with Pacemaker itself.
t_is_running() { crm_resource --locate --resource "$1" --quiet 2>/dev/null | grep -qxF -- "$2"; }
t_agent_ready() { t_is_running "$@"; }
"""

_PCS = r"""
t_start() {
    run pcs constraint location add "placement-start-$1" "$1" "$2" INFINITY || return 1
    run pcs resource enable "$1"
}
t_started() { run pcs constraint remove "placement-start-$1" || true; }
t_migrate() { run pcs resource move "$1" "$3"; }
t_migrated() { run pcs resource clear "$1" || true; }
t_stop() { run pcs resource disable "$1"; }
"""

_CRM = r"""
t_start() {
    run crm configure location "placement-start-$1" "$1" inf: "$2" || return 1
    run crm resource start "$1"
}
t_started() { run crm configure delete "placement-start-$1" || true; }
t_migrate() { run crm resource move "$1" "$3"; }
t_migrated() { run crm resource clear "$1" || true; }
t_stop() { run crm resource stop "$1"; }
"""

_PROXMOX = r"""
# qm and pct act on the guests of the node they run on: on another node of the cluster
# the command goes over the cluster's root ssh, each word quoted again for the remote shell.
LOCAL_NODE=$(hostname)
on_node() {
    local node=$1
    shift
    if [ "$node" = "$LOCAL_NODE" ]; then
        "$@"
    else
        ssh -o BatchMode=yes "root@$node" -- "$(printf '%q ' "$@")"
    fi
}
# Run a command on a node: logged, or only printed in a dry run.
run_on() {
    local node=$1
    shift
    if [ "$DRY_RUN" = 1 ]; then
        log "dry-run: on $node: $(printf '%q ' "$@")"
        return 0
    fi
    log "run on $node: $(printf '%q ' "$@")"
    on_node "$node" "$@"
}
tool_of() { case "$1" in vm:*) echo qm ;; ct:*) echo pct ;; esac; }
config_dir_of() { case "$1" in vm:*) echo qemu-server ;; ct:*) echo lxc ;; esac; }
t_is_running() {
    on_node "$2" "$(tool_of "$1")" status "${1#*:}" 2>/dev/null | grep -qx 'status: running'
}
t_agent_ready() {
    case "$1" in
        vm:*) on_node "$2" qm guest cmd "${1#*:}" ping ;;
        *) t_is_running "$1" "$2" ;;
    esac
}
t_start() {
    local guest=$1 host=$2 from=$3 from_down=$4 vmid=${1#*:}
    if [ -n "$from" ] && [ "$from" != "$host" ]; then
        if [ "$from_down" = 1 ]; then
            # The configuration of a guest on a dead node is moved by hand (Proxmox VE
            # admin guide, "recovery"); pmxcfs makes it visible on every node.
            run mv "/etc/pve/nodes/$from/$(config_dir_of "$guest")/$vmid.conf" \
                "/etc/pve/nodes/$host/$(config_dir_of "$guest")/$vmid.conf" || return 1
        else
            run_on "$from" "$(tool_of "$guest")" migrate "$vmid" "$host" || return 1
        fi
    fi
    run_on "$host" "$(tool_of "$guest")" start "$vmid"
}
t_started() { :; }
t_migrate() {
    case "$1" in
        vm:*) run_on "$2" qm migrate "${1#*:}" "$3" --online ;;
        # A container cannot move while it runs: pct stops it, moves it, starts it.
        ct:*) run_on "$2" pct migrate "${1#*:}" "$3" --restart ;;
    esac
}
t_migrated() { :; }
t_stop() { run_on "$2" "$(tool_of "$1")" shutdown "${1#*:}"; }
"""

_SHELL = r"""
# The user's hook does the work: HOOK start GUEST HOST [FROM], HOOK migrate GUEST FROM TO,
# HOOK stop GUEST HOST, HOOK is-running GUEST HOST, HOOK agent-ping GUEST HOST.
t_is_running() { "$HOOK" is-running "$1" "$2"; }
t_agent_ready() { "$HOOK" agent-ping "$1" "$2"; }
t_start() {
    if [ -n "$3" ]; then run "$HOOK" start "$1" "$2" "$3"; else run "$HOOK" start "$1" "$2"; fi
}
t_started() { :; }
t_migrate() { run "$HOOK" migrate "$1" "$2" "$3"; }
t_migrated() { :; }
t_stop() { run "$HOOK" stop "$1" "$2"; }
"""

_TARGETS = {
    "virsh": (
        "virsh (libvirt)",
        _VIRSH,
        "VIRSH_URI=@VIRSH_URI@\nXML_DIR=''\n",
        "\n              [--uri TEMPLATE] [--xml-dir DIR]",
        "        --uri) VIRSH_URI=${2-}; shift ;;\n        --xml-dir) XML_DIR=${2-}; shift ;;\n",
    ),
    "pcs": ("pcs (Pacemaker)", _PACEMAKER_COMMON + _PCS, "", "", ""),
    "crm": ("crm shell (Pacemaker)", _PACEMAKER_COMMON + _CRM, "", "", ""),
    "proxmox": ("qm / pct (Proxmox VE)", _PROXMOX, "", "", ""),
    "shell": (
        "a hook command",
        _SHELL,
        "HOOK=@HOOK@\n",
        "\n              [--hook CMD]",
        "        --hook) HOOK=${2-}; shift ;;\n",
    ),
}


def _dependency_depths(problem: Problem) -> dict[str, int]:
    """Guest -> the length of its longest `after` chain (the model forbids cycles)."""
    depths: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in depths:
            after = problem.guest(name).boot.after
            depths[name] = 1 + max((depth(d) for d in after), default=-1)
        return depths[name]

    for guest in problem.guests:
        depth(guest.name)
    return depths


def clone_instance(name: str, target: str) -> bool:
    """Whether `name` is a Pacemaker clone instance as `import_pacemaker` names them
    (`ID:N`): Pacemaker places those itself, so a pcs or crm script leaves them out."""
    base, colon, number = name.rpartition(":")
    return (
        target in ("pcs", "crm") and colon == ":" and number.isdigit() and bool(XML_ID.match(base))
    )


def export_script(
    problem: Problem, plan: Plan, target: str, options: ExportOptions | None = None
) -> str:
    """The bash script that carries out `plan` with `target`'s tool (see the module doc).

    Raises `ExportError` listing every guest or host name the target cannot take safely,
    and for a plan without a usable status or naming guests the problem does not have.
    """
    options = options or ExportOptions()
    if target not in TARGETS:
        raise ExportError(
            [InputError("--to", f"unknown target {target!r}; one of {', '.join(TARGETS)}")]
        )
    if plan.status not in (Status.OPTIMAL, Status.FEASIBLE):
        raise ExportError(
            [InputError("status", f"the plan is {plan.status.value}: nothing to carry out")]
        )
    unknown = [a.guest for a in plan.assignments if not problem.has_guest(a.guest)]
    if unknown:
        raise ExportError(
            [InputError("assignments", f"guest '{unknown[0]}' is not in the problem")]
        )
    if target == "virsh" and "{host}" not in options.virsh_uri:
        raise ExportError([InputError("--uri", "the URI template must contain {host}")])
    errors = plan_name_errors(
        problem,
        plan,
        target,
        verb=f"export to {target}",
        skip=lambda guest: clone_instance(guest, target),
    )
    if errors:
        raise ExportError(errors)

    title, functions, settings, usage, option_lines = _TARGETS[target]
    prelude = (
        _PRELUDE.replace("@TARGET_SETTINGS@", settings)
        .replace("@TARGET_USAGE@", usage)
        .replace("@TARGET_OPTIONS@", option_lines)
        .replace("@READY_TIMEOUT@", str(int(options.ready_timeout_s)))
        .replace("@POLL_S@", str(int(options.poll_s)))
        .replace("@READY_CHECK@", quote(options.ready_check))
        .replace("@READY_COMMAND@", quote(options.ready_command or ""))
        .replace("@VIRSH_URI@", quote(options.virsh_uri))
        .replace("@HOOK@", quote(options.hook))
    )

    instances = [
        a
        for a in plan.assignments
        if clone_instance(a.guest, target) and a.action is not Action.STAY
    ]
    acting = [a for a in plan.assignments if a not in instances]
    stops = [a for a in acting if a.action is Action.STOP]
    depth = _dependency_depths(problem)
    # Offset order, dependencies first at equal offsets (a dry run runs them in order).
    timeline = sorted(
        (a for a in acting if a.action in (Action.START, Action.MIGRATE)),
        key=lambda a: (a.start_s or 0, depth[a.guest], a.guest),
    )
    index_of = {a.guest: i for i, a in enumerate([*stops, *timeline])}
    by_guest = plan.by_guest()

    starts = sum(a.action is Action.START for a in timeline)
    moves = len(timeline) - starts
    # Plan text is untrusted like the names: repr() keeps every comment on one line.
    header = [
        "#!/usr/bin/env bash",
        f"# Carries out a placement plan with {title}.",
        f"# Generated by `placement export --to {target}` from a plan by {plan.solver!r}",
        f"# ({plan.status.value}): {len(stops)} stop(s), {starts} start(s), {moves} migration(s).",
        "# Review it, rehearse it with --dry-run, then run it. Options: --help.",
        "#",
        "# offset  action   guest -> host",
    ]
    for assignment in stops:
        host = problem.guest(assignment.guest).current_host
        header.append(f"#      -  stop     {assignment.guest!r} on {host!r}")
    for assignment in timeline:
        offset, action = assignment.start_s or 0, assignment.action.value
        header.append(f"# {offset:>5}s  {action:<8} {assignment.guest!r} -> {assignment.host!r}")
    stays = sum(a.action is Action.STAY for a in plan.assignments)
    if stays:
        header.append(f"# {stays} guest(s) stay where they run.")
    for assignment in instances:
        header.append(
            f"# clone instance {assignment.guest!r} ({assignment.action.value} -> "
            f"{assignment.host!r}): Pacemaker places clone instances itself; left to it"
        )
    for unplaced in plan.unplaced:
        header.append(f"# unplaced: {unplaced.guest!r}: {unplaced.reason!r}")
    header.append("")

    body = ["", "NAMES=()"]
    for name, index in index_of.items():
        body.append(f"NAMES[{index}]={quote(name)}")
    body.append("")
    if stops:
        body.append("# Stops first: the plan counts their room as free from the start.")
        for assignment in stops:
            host = problem.guest(assignment.guest).current_host or ""
            body.append(
                f"do_stop {index_of[assignment.guest]} {quote(assignment.guest)} {quote(host)}"
            )
        body.append("START=$(now)")
        body.append("")
    body.append("# The timeline: each line waits for its offset, then its dependencies.")
    for assignment in timeline:
        guest = problem.guest(assignment.guest)
        host = assignment.host or ""
        words = [
            "schedule",
            str(index_of[assignment.guest]),
            str(int(assignment.start_s or 0)),
            assignment.action.value,
            quote(assignment.guest),
            quote(host),
        ]
        current = guest.current_host if guest.current_host != host else None
        from_down = current is not None and problem.host(current).state is HostState.FAILED
        words += [quote(current or ""), "1" if from_down else "0"]
        skip_reason = None
        if assignment.action is Action.START:
            for dependency in guest.boot.after:
                if dependency in index_of and by_guest[dependency].action is Action.START:
                    words.append(str(index_of[dependency]))
                elif dependency not in by_guest or by_guest[dependency].host is None:
                    skip_reason = f"dependency {dependency} is not placed"
        if skip_reason is not None:
            body.append(f"finish {index_of[assignment.guest]} skipped {quote(skip_reason)}")
        else:
            body.append(" ".join(words))
    body += ["", "wait", "report"]
    return "\n".join(header) + prelude + functions + "\n".join(body) + "\n"
