//! The report: the same figures for both sides, their ratios, and the
//! targets, in Markdown.

use std::fmt::Write;

use super::Results;
use super::fleet::CLUSTER_SIZE;
use super::release::BAKE_SECONDS;
use super::report::{ECS_READ_PER_SECOND, RolloutRun, SweepRun, floor_seconds, ratio, secs};
use super::steady::{CONCURRENCY, NAIVE_WORKERS, POLL, RESYNC, WAVE, WAVE_SPREAD};
use cutover_controller::cloud::budget::{BudgetConfig, Category};

fn count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(m: Option<f64>) -> String {
    m.map_or("-".into(), |m| format!("{m:.0} MiB"))
}

fn describes(run: &SweepRun) -> f64 {
    run.calls_by_operation
        .get("ecs:DescribeServices")
        .copied()
        .unwrap_or(0.0)
}

fn elb_calls(run: &SweepRun) -> f64 {
    run.calls_by_operation
        .iter()
        .filter(|(op, _)| op.starts_with("elbv2:"))
        // Not `sum()`: an empty f64 sum is -0.0, which prints as "-0.000".
        .fold(0.0, |total, (_, n)| total + n)
}

fn yes(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

pub fn markdown(r: &Results) -> String {
    let budgets = BudgetConfig::default();
    let mut out = String::new();
    let _ = writeln!(out, "## cutover-bench\n");
    let _ = writeln!(
        out,
        "Measured on {} in {:.0} s of wall time with `{}`.\n",
        r.machine, r.wall_seconds, r.command
    );
    let _ = writeln!(
        out,
        "Simulated cloud: AWS-like latency (DescribeServices 40-150 ms, ELB reads 20-80 ms, task set \
         calls 100-400 ms, ELB changes 50-200 ms, DynamoDB 5-20 ms), AWS's request budgets enforced \
         (calls past a bucket are throttled), a change feed that lags 0.1-0.6 s, {CLUSTER_SIZE} \
         services per cluster, no test listeners. Simulated time on a paused runtime; CPU and memory \
         are this machine's, for the whole process (the simulated cloud included). cutover: the \
         default configuration ({CONCURRENCY} workers, resync every {} s, {:.0}% of each budget, \
         drift checks {:.0}% of that). Naive: {NAIVE_WORKERS} workers sweeping back to back {} s apart, \
         one DescribeServices per service and one DescribeTargetHealth per target group, the SDK's \
         standard retries. Detection: {WAVE} records written {:.0} s apart, from the write to the \
         first CreateTaskSet.\n",
        RESYNC.as_secs(),
        budgets.share * 100.0,
        budgets.steady_share * 100.0,
        POLL.as_secs(),
        WAVE_SPREAD.as_secs_f64() / WAVE as f64,
    );
    let _ = writeln!(out, "### Steady state and detection\n");
    let _ = writeln!(
        out,
        "| services | side | DescribeServices / service / sweep | all calls / service / sweep | sweep (simulated) | ECS read budget used | detection p50 | detection p99 | CPU / sweep | peak RSS (fleet alone) |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let sizes: Vec<usize> = {
        let mut s: Vec<usize> = r.sweeps.iter().map(|s| s.services).collect();
        s.dedup();
        s
    };
    for &n in &sizes {
        let side = |mode: &str| r.sweeps.iter().find(|s| s.services == n && s.mode == mode);
        for run in [side("cutover"), side("naive")].into_iter().flatten() {
            let missed = if run.detection_missed > 0 {
                format!(" ({} not acted on)", run.detection_missed)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.3} | {} | {:.1}% | {} | {}{missed} | {:.1} ms | {} ({}) |",
                count(n),
                run.mode,
                describes(run),
                run.calls_per_service_per_sweep,
                secs(Some(run.sweep_seconds)),
                run.ecs_read_budget_share() * 100.0,
                secs(run.detection_p50_seconds),
                secs(run.detection_p99_seconds),
                run.cpu_ms_per_sweep,
                mib(run.peak_rss_mib),
                mib(run.setup_rss_mib),
            );
        }
        if let (Some(c), Some(v)) = (side("cutover"), side("naive")) {
            let _ = writeln!(
                out,
                "| | naive ÷ cutover | {} | {} | {} | {} | {} | {} | {} | {} |",
                ratio(Some(describes(c)), Some(describes(v))),
                ratio(
                    Some(c.calls_per_service_per_sweep),
                    Some(v.calls_per_service_per_sweep)
                ),
                ratio(Some(c.sweep_seconds), Some(v.sweep_seconds)),
                ratio(
                    Some(c.ecs_read_budget_share()),
                    Some(v.ecs_read_budget_share())
                ),
                ratio(c.detection_p50_seconds, v.detection_p50_seconds),
                ratio(c.detection_p99_seconds, v.detection_p99_seconds),
                ratio(Some(c.cpu_ms_per_sweep), Some(v.cpu_ms_per_sweep)),
                ratio(c.peak_rss_mib, v.peak_rss_mib),
            );
        }
    }
    rollouts(&mut out, r, &budgets);
    releases(&mut out, r);
    targets(&mut out, r, &budgets);
    out
}

struct Floors {
    elb: f64,
    elb_account: f64,
    ecs: f64,
    /// What cutover's ELB describe calls needed of their budget.
    elb_reads: f64,
}

impl Floors {
    /// The slowest of the mutation budgets: no design can beat it.
    fn mutations(&self) -> f64 {
        self.elb.max(self.ecs)
    }
}

/// Successful ELB describe calls the rollout made.
fn elb_reads(run: &RolloutRun) -> u64 {
    run.calls
        .iter()
        .filter(|(op, _)| op.starts_with("elbv2:Describe"))
        .map(|(op, n)| n - run.throttled.get(op).copied().unwrap_or(0))
        .sum()
}

fn floors(run: &RolloutRun, budgets: &BudgetConfig) -> Floors {
    let (elb, ecs) = (run.elb_mutations as f64, run.ecs_mutations as f64);
    let at = |c: Category, calls: f64| {
        let rate = budgets.cutover(c);
        floor_seconds(calls, rate.per_second, f64::from(rate.burst))
    };
    let account = budgets.account(Category::ElbMutation);
    Floors {
        elb: at(Category::ElbMutation, elb),
        elb_account: floor_seconds(elb, account.per_second, f64::from(account.burst)),
        ecs: at(Category::EcsMutation, ecs),
        // The baseline keeps to no share: it may spend the whole account's.
        elb_reads: if run.mode == "cutover" {
            at(Category::ElbRead, elb_reads(run) as f64)
        } else {
            let rate = budgets.account(Category::ElbRead);
            floor_seconds(
                elb_reads(run) as f64,
                rate.per_second,
                f64::from(rate.burst),
            )
        },
    }
}

fn rollouts(out: &mut String, r: &Results, budgets: &BudgetConfig) {
    let Some(first) = r.rollouts.first() else {
        return;
    };
    let elb = budgets.cutover(Category::ElbMutation);
    let ecs = budgets.cutover(Category::EcsMutation);
    let reads = budgets.cutover(Category::ElbRead);
    let _ = writeln!(
        out,
        "\n### Fleet rollout: {} services all at once, no bake\n",
        count(first.services)
    );
    let _ = writeln!(
        out,
        "The floor is the time cutover's share of the ELB mutation budget ({}/s after a burst of {}) \
         needs for the ModifyListener calls the rollout made; the whole account's budget ({}/s, \
         burst {}) would need the time in brackets. The ECS task set calls have a floor of their own \
         ({}/s, burst {}); three per service (create, make primary, delete blue) make it the higher \
         of the two. The ELB describe calls (target health, weights) are paced by a budget of their \
         own ({}/s, burst {}; the baseline, which keeps to no share, may use the account's {}/s); \
         their floor is for the calls each side made.\n",
        elb.per_second,
        elb.burst,
        budgets.elb_mutation.per_second,
        budgets.elb_mutation.burst,
        ecs.per_second,
        ecs.burst,
        reads.per_second,
        reads.burst,
        budgets.elb_read.per_second
    );
    let _ = writeln!(
        out,
        "| side | time (simulated) | ELB mutations | ELB floor (account) | time ÷ ELB floor | ECS mutations | ECS floor | time ÷ mutation floor | ELB describes | their floor | throttled calls | failed | peak RSS |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in &r.rollouts {
        let f = floors(run, budgets);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.mode,
            run.seconds.map_or_else(
                || format!("not done ({} settled)", run.settled),
                |s| secs(Some(s))
            ),
            run.elb_mutations,
            secs(Some(f.elb)),
            secs(Some(f.elb_account)),
            run.seconds
                .map_or("-".into(), |s| format!("{:.2}", s / f.elb.max(1e-9))),
            run.ecs_mutations,
            secs(Some(f.ecs)),
            run.seconds.map_or("-".into(), |s| format!(
                "{:.2}",
                s / f.mutations().max(1e-9)
            )),
            elb_reads(run),
            secs(Some(f.elb_reads)),
            run.throttled.values().sum::<u64>(),
            run.failed,
            mib(run.peak_rss_mib),
        );
    }
}

/// Successful calls of the operations whose name starts with `prefix`.
fn ok_with_prefix(
    calls: &std::collections::BTreeMap<String, u64>,
    throttled: &std::collections::BTreeMap<String, u64>,
    prefix: &str,
) -> u64 {
    calls
        .iter()
        .filter(|(op, _)| op.starts_with(prefix))
        .map(|(op, n)| n - throttled.get(op).copied().unwrap_or(0))
        .sum()
}

fn secs_or_dash(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| secs(Some(s)))
}

fn releases(out: &mut String, r: &Results) {
    let Some(run) = r.releases.first() else {
        return;
    };
    let rolled = r
        .rollouts
        .iter()
        .find(|x| x.mode == "cutover" && x.services == run.services);
    let bakes = run.waves.len().saturating_sub(1);
    let _ = writeln!(
        out,
        "\n### Fleet release: {} services in waves\n",
        count(run.services)
    );
    let _ = writeln!(
        out,
        "The same fleet, seed, controller configuration and budgets as cutover's all-at-once rollout \
         above, but one release record instead of {} record writes: it sets a new image (`set` \
         `image` and `container`, which registers `<family>:2` per service), in waves `{}` ({} \
         services in all after each), `bake_between` {} and failure budget `{}`; each member's \
         record says all at once and no bake, as in the rollout. The controller's release loop \
         writes the members' records; their rollouts are the ordinary ones. Time: from the \
         release's write until every service is Steady on the new image, checked every 5 s as for \
         the rollout (in brackets: until the release wrote its status `completed`); {} bakes of \
         {} are part of it. In flight: members whose record says the new image and that are \
         neither Steady on it nor failed, counted every simulated second. DynamoDB: every call \
         from the release's write on (the write included), and in brackets the release loop's: \
         each look (every poll, 5 s, while the release is active) is a Scan of the table and a \
         GetItem of the release, then a conditional UpdateItem per member record written and one \
         for its status when it changed. The halt watch's read every poll is answered by the \
         bench's store without a call, in both runs. ELB describes and DescribeServices: \
         successful calls.\n",
        count(run.services),
        run.waves_spec,
        run.waves
            .iter()
            .map(|w| count(w.cumulative))
            .collect::<Vec<_>>()
            .join(", "),
        run.bake_between,
        run.failure_budget,
        bakes,
        run.bake_between,
    );
    let _ = writeln!(
        out,
        "| run | time (simulated) | ELB mutations | ECS mutations | ELB describes | DescribeServices | DynamoDB calls (release loop) | in flight at most | throttled calls | failed | peak RSS | wall time |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    if let Some(x) = rolled {
        let dynamo = ok_with_prefix(&x.calls, &std::collections::BTreeMap::new(), "dynamodb:");
        let _ = writeln!(
            out,
            "| all at once | {} | {} | {} | {} | {} | {} (-) | {} (all written at once) | {} | {} | {} | {:.0} s |",
            x.seconds.map_or_else(
                || format!("not done ({} settled)", x.settled),
                |s| secs(Some(s))
            ),
            x.elb_mutations,
            x.ecs_mutations,
            ok_with_prefix(&x.calls, &x.throttled, "elbv2:Describe"),
            ok_with_prefix(&x.calls, &x.throttled, "ecs:DescribeServices"),
            dynamo,
            count(x.services),
            x.throttled.values().sum::<u64>(),
            x.failed,
            mib(x.peak_rss_mib),
            x.wall_seconds,
        );
    }
    let _ = writeln!(
        out,
        "| in waves | {} ({}) | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {:.0} s |",
        run.seconds.map_or_else(
            || format!("not done ({} settled)", run.settled),
            |s| secs(Some(s))
        ),
        secs_or_dash(run.completed_seconds),
        run.elb_mutations,
        run.ecs_mutations,
        ok_with_prefix(&run.calls, &run.throttled, "elbv2:Describe"),
        ok_with_prefix(&run.calls, &run.throttled, "ecs:DescribeServices"),
        ok_with_prefix(&run.calls, &std::collections::BTreeMap::new(), "dynamodb:"),
        run.release_loop.total(),
        count(run.most_in_flight),
        run.throttled.values().sum::<u64>(),
        run.failed,
        mib(run.peak_rss_mib),
        run.wall_seconds,
    );
    let l = &run.release_loop;
    let _ = writeln!(
        out,
        "\nThe release loop's DynamoDB calls: {} Scans, {} GetItems of the release, {} UpdateItems of members' records, {} of its status (the largest {:.0} KB of the 400 KB an item may hold). It ended `{}`, {} of {} services Steady on the new image, {} failed; it counted at most {} members in flight itself.\n",
        l.scans,
        l.reads,
        l.member_writes,
        l.status_writes,
        run.largest_status_bytes as f64 / 1024.0,
        run.phase,
        count(run.settled),
        count(run.services),
        run.failed,
        count(run.most_in_flight_counted_by_release),
    );
    let _ = writeln!(
        out,
        "| wave | services (in all) | started | settled | took | then baked |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
    for (i, w) in run.waves.iter().enumerate() {
        let took = match (w.started_seconds, w.settled_seconds) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let baked = match (w.settled_seconds, run.waves.get(i + 1)) {
            (Some(settled), Some(next)) => next.started_seconds.map(|s| s - settled),
            _ => None,
        };
        let _ = writeln!(
            out,
            "| {} | {} ({}) | {} | {} | {} | {} |",
            i + 1,
            count(w.services),
            count(w.cumulative),
            secs_or_dash(w.started_seconds),
            secs_or_dash(w.settled_seconds),
            secs_or_dash(took),
            secs_or_dash(baked),
        );
    }
    if let (Some(s), Some(x)) = (run.seconds, rolled.and_then(|x| x.seconds)) {
        let _ = writeln!(
            out,
            "\nIn waves it took {} against {} all at once ({:.2}×); less its {} bakes ({}), {}.",
            secs(Some(s)),
            secs(Some(x)),
            s / x.max(1e-9),
            bakes,
            secs(Some(BAKE_SECONDS * bakes as f64)),
            secs(Some(s - BAKE_SECONDS * bakes as f64)),
        );
    }
}

fn targets(out: &mut String, r: &Results, budgets: &BudgetConfig) {
    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(out, "| target | measured | |");
    let _ = writeln!(out, "|---|---|---|");
    let ours: Vec<&SweepRun> = r.sweeps.iter().filter(|s| s.mode == "cutover").collect();
    if !ours.is_empty() {
        let figures: Vec<String> = ours
            .iter()
            .map(|s| {
                format!(
                    "{}: {:.3} ({:.3} ELB)",
                    count(s.services),
                    describes(s),
                    elb_calls(s)
                )
            })
            .collect();
        let met = ours
            .iter()
            .all(|s| describes(s) <= 0.1 + 1e-9 && elb_calls(s) == 0.0);
        let _ = writeln!(
            out,
            "| at most 0.1 DescribeServices and no ELB call per steady service per sweep | {} | {} |",
            figures.join("; "),
            yes(met)
        );
        let p99: Vec<String> = ours
            .iter()
            .map(|s| format!("{}: {}", count(s.services), secs(s.detection_p99_seconds)))
            .collect();
        let met = ours
            .iter()
            .all(|s| s.detection_missed == 0 && s.detection_p99_seconds.is_some_and(|p| p <= 1.0));
        let _ = writeln!(
            out,
            "| detection p99 at most 1 s | {} | {} |",
            p99.join("; "),
            yes(met)
        );
    }
    if let Some(big) = ours.iter().find(|s| s.services == 10_000) {
        let during =
            big.describe_calls_per_sweep / big.sweep_seconds.max(1e-9) / ECS_READ_PER_SECOND;
        let met = big.ecs_read_budget_share() <= 0.25 && during <= 0.25 + 1e-9;
        let _ = writeln!(
            out,
            "| a 10,000-service sweep within 25% of the ECS read budget | {:.0} calls: {:.1}% of the budget over the resync interval, {:.1}% while the sweep runs ({:.0} s) | {} |",
            big.describe_calls_per_sweep,
            big.ecs_read_budget_share() * 100.0,
            during * 100.0,
            big.sweep_seconds,
            yes(met)
        );
        let rss = big.peak_rss_mib.unwrap_or(f64::MAX);
        let _ = writeln!(
            out,
            "| peak RSS at most 64 MiB at 10,000 services | {} (the simulated fleet alone: {}) | {} |",
            mib(big.peak_rss_mib),
            mib(big.setup_rss_mib),
            yes(rss <= 64.0)
        );
    }
    if let Some(run) = r.rollouts.iter().find(|x| x.mode == "cutover") {
        let f = floors(run, budgets);
        let text = match run.seconds {
            Some(s) => format!(
                "{} against a floor of {} ({:.2}×)",
                secs(Some(s)),
                secs(Some(f.elb)),
                s / f.elb.max(1e-9)
            ),
            None => format!(
                "did not finish ({} of {} settled)",
                run.settled, run.services
            ),
        };
        let met = run.seconds.is_some_and(|s| s <= 1.1 * f.elb);
        let _ = writeln!(
            out,
            "| fleet rollout within 1.1 × the ELB mutation floor | {text} | {} |",
            yes(met)
        );
        if let Some(s) = run.seconds {
            let _ = writeln!(
                out,
                "| (for reference) the same rollout against the slowest mutation budget, ECS task set calls included | {} against {} ({:.2}×) | {} |",
                secs(Some(s)),
                secs(Some(f.mutations())),
                s / f.mutations().max(1e-9),
                yes(s <= 1.1 * f.mutations())
            );
        }
    }
}
