"""report.py: recoveries after resets, paired differences over seeds and their verdict, read from fake run folders."""

import json
import os

import pytest

import report


def write_log(folder, records):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "log.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def test_recoveries_count_steps_back_to_the_pre_reset_loss():
    # loss 2.0 until the reset at step 20, then 5.0 falling by 0.25 a step: back at 2.0 after 12 steps
    log = [{"step": s, "loss": 2.0} for s in range(20)]
    log += [{"step": 20 + i, "loss": max(5.0 - 0.25 * i, 1.9), **({"forget": True} if i == 0 else {})} for i in range(30)]
    (reset, steps, censored), = report.recoveries(log, window=1)
    assert (reset, steps, censored) == (20, 12, False)
    # never back before the run ends: censored at the episode length
    log = [{"step": s, "loss": 2.0} for s in range(20)] + [{"step": 20 + i, "loss": 5.0, **({"forget": True} if i == 0 else {})} for i in range(10)]
    assert report.recoveries(log, window=1) == [(20, 10, True)]


@pytest.mark.parametrize("mean, std, n, lower, verdict", [
    (-0.3, 0.1, 3, True, "yes, forgetting better"),   # |mean| > 2 std, lower is better
    (-0.3, 0.1, 3, False, "yes, standard better"),    # the same number where higher is better
    (0.3, 0.1, 3, True, "yes, standard better"),
    (-0.15, 0.1, 3, True, "no"),                       # within twice the spread
    (-0.3, 0.0, 1, True, "one seed: no spread"),
])
def test_beyond_spread(mean, std, n, lower, verdict):
    assert report.beyond_spread(mean, std, n, lower) == verdict


def test_adaptation_summary_pairs_standard_and_forgetting_within_each_seed(tmp_path):
    # forgetting is 0.5 better than standard in every seed, while the seeds themselves differ by far more:
    # the paired difference has no spread, the unpaired means overlap
    seeds = []
    for i, offset in enumerate((0.0, 2.0, 4.0)):
        seed = tmp_path / f"seed{i}"
        for mode in ("relearn", "adapt"):
            for kind, bpb in (("standard", 3.0 + offset), ("forgetting", 2.5 + offset)):
                write_log(seed / f"{mode}_{kind}_1000", [{"step": 0, "val_bpb": 9.0}, {"step": 5, "val_bpb": bpb,
                                                                                        "val_bpb_mean_pretraining": 1.0}])
        (seed / "adapt_standard_1000.log").write_text("run.sh's log of the run: not a run folder\n")
        seeds.append(str(seed))
    summary = report.plot_adaptation(seeds, str(tmp_path / "adaptation.png"))
    assert (tmp_path / "adaptation.png").stat().st_size > 1000
    for mode in ("relearn", "adapt"):
        (standard, forgetting, diff), = summary[mode].values()
        assert standard == pytest.approx((5.0, 2.0)) and forgetting == pytest.approx((4.5, 2.0))
        assert diff == pytest.approx((-0.5, 0.0))
        assert report.beyond_spread(*diff, 3) == "yes, forgetting better"
