"""The tables of results and the raw lines behind each of their cells (rendered by
benchmarks/render_tables.py, whose docstring gives the placeholder syntax and how to add a row).

Rows are one line each on purpose: a new measurement is a new raw line plus one `Row(...)`.
Cell lists that several rows share are named constants, so a row says only what differs.
"""
from render_tables import Row, Table
from table_spec_bench import BENCH_TABLES

RM = "README.md"

# A report.json-shaped line (report.json's heldout figures, as adaptive-rows.jsonl keeps them):
# the static row with its interval, the 7-gram, the paired difference, the adaptive rows.
REPORT = ["—", "**{lstm.nats_per_char|.4f}** [{lstm.ci95.0|.4f}, {lstm.ci95.1|.4f}]",
          "{ngram.nats_per_char|.4f}",
          "{difference.lstm_minus_ngram.mean|+.4f} [{difference.lstm_minus_ngram.ci95.0|+.4f}, "
          "{difference.lstm_minus_ngram.ci95.1|+.4f}]",
          "{lstm_cache.nats_per_char|.4f}", "{lstm_dynamic.nats_per_char|.4f}",
          "{lstm_dynamic_cache.nats_per_char|.4f}", "`{=file}`"]
# default-run.jsonl's older shape: the difference at the top level, no adaptive rows.
DEFAULT_RUN = ["—", "**{lstm.nats_per_char|.4f}** [{lstm.ci95.0|.4f}, {lstm.ci95.1|.4f}]",
               "{ngram.nats_per_char|.4f}",
               "{lstm_minus_ngram.mean|+.4f} [{lstm_minus_ngram.ci95.0|+.4f}, "
               "{lstm_minus_ngram.ci95.1|+.4f}]", "—", "—", "—", "`{=file}`"]
# benchmarks/time_to_quality.py's final line: no interval; the 7-gram on the same split is the
# hour model's Evaluate (hour-model-adaptive-rows.jsonl), tiny-shakespeare's whole validation split.
NGRAM_TINY = "hour-model-adaptive-rows.jsonl::ngram.nats_per_char@note~grid centred"
TTQ = ["{chars_per_s}", "**{val_nats_per_char|.4f}**", "{%s|.4f}" % NGRAM_TINY,
       "{=v('val_nats_per_char') - v('%s')|+.4f}" % NGRAM_TINY, "—", "—", "—", "`{=file}`"]

EVAL = "`luigi --module pipeline Evaluate --local-scheduler`"
TTQ10 = "`python benchmarks/time_to_quality.py --config configs/tinyshakespeare-10min.yaml --budget-s 600`"
TTQ60 = "`python benchmarks/time_to_quality.py --config configs/tinyshakespeare-60min.yaml --budget-s 3600 --points 12`"
HOUR_EVAL = "`luigi --module pipeline Evaluate --config C --local-scheduler`, C = the 60-minute config plus `evaluate.dynamic: true`"

# A benchmarks/report_line.py line: every held-out row scored on the test split, the static row
# on the whole held-out tail (val + test) beside it, the model's training speed.
TEST = ["{model.chars_per_s|,.0f}", "**{lstm.nats_per_char|.4f}** [{lstm.ci95.0|.4f}, {lstm.ci95.1|.4f}]",
        "{ngram.nats_per_char|.4f}",
        "{difference.lstm_minus_ngram.mean|+.4f} [{difference.lstm_minus_ngram.ci95.0|+.4f}, "
        "{difference.lstm_minus_ngram.ci95.1|+.4f}]",
        "{lstm_cache.nats_per_char|.4f}", "{lstm_dynamic.nats_per_char|.4f}",
        "{lstm_dynamic_cache.nats_per_char|.4f}", "{validation.nats_per_char|.4f}", "`{=file}`"]
TEST_EVAL = "`luigi --module pipeline Evaluate --config C --local-scheduler`, C = %s plus `evaluate.dynamic: true`"

README_TABLES = [
    Table("expected-test", RM,
          ["run", "command", "training chars/s", "test nats/char [95%]", "7-gram",
           "LSTM − 7-gram [95%]", "+ cache", "+ dynamic evaluation", "+ both",
           "val + test (static)", "raw line"], [
        Row("default pipeline (bundled corpus, 1,300 steps; trained on a shared machine)", "test-split.jsonl",
            "run~default pipeline with", [TEST_EVAL % "`pipeline.yaml`"] + TEST),
        Row("10-minute config, tiny-shakespeare", "test-split.jsonl", "run~10-minute config with",
            [TEST_EVAL % "`configs/tinyshakespeare-10min.yaml`"] + TEST),
        Row("60-minute config, tiny-shakespeare (2×768; 2,179 steps)", "test-split.jsonl",
            "run~60-minute config with", [TEST_EVAL % "`configs/tinyshakespeare-60min.yaml`"] + TEST),
    ], align="llrlrlrrrrl"),
    Table("expected-quality", RM,
          ["run", "command", "training chars/s", "held-out nats/char [95%]", "7-gram",
           "LSTM − 7-gram [95%]", "+ cache", "+ dynamic evaluation", "+ both", "raw line"], [
        Row("default pipeline (seeds 0); the dynamic rows with `evaluate.dynamic: true`",
            "adaptive-rows.jsonl", "run~dynamic on", [EVAL] + REPORT),
        Row("default pipeline, every seed 1", "default-run.jsonl", "run=dropout0-steps1300-seed1",
            ["`model.seed`, `train.seed`, `sample.seed`: 1"] + DEFAULT_RUN),
        Row("10-minute config, tiny-shakespeare", "tinyshakespeare-10min-600s-gatemajor.jsonl",
            "final", [TTQ10] + TTQ),
        Row("the same config, a later sitting on a slower machine", "ranks-10min.jsonl",
            "final,processes=1", [TTQ10] + TTQ),
        Row("the same config on two ranks (`--processes 2`)", "ranks-10min.jsonl",
            "final,processes=2", [TTQ10 + " `--processes 2`"] + TTQ),
        Row("60-minute config, tiny-shakespeare (2×768)", "cifg768-awd-t1-3600s.jsonl", "final",
            [TTQ60] + TTQ),
        Row("the 60-minute config's model trained on a machine half as fast (step 1,911 of "
            "3,513), with the adaptive rows", "hour-model-adaptive-rows.jsonl",
            "note~grid centred", [HOUR_EVAL] + REPORT),
    ], align="llrlrlrrrl"),
    Table("expected-other", RM, ["what", "command", "result", "raw line"], [
        Row("default pipeline, wall time", "default-run.jsonl", "run=dropout0-steps1300-seed0",
            [EVAL, "{=minsec(v('wall_s'))} for all six stages on fresh artifacts (the training "
             "chars/s of that run were not kept)", "`{=file}`"]),
        Row("smoke pipeline, wall time", "smoke-pipeline.jsonl", "",
            ["`luigi --module pipeline Evaluate --config configs/smoke.yaml --local-scheduler`",
             "{=minsec(v('wall_seconds'))} for all six stages on fresh artifacts, Evaluate "
             "{stage_seconds.Evaluate|.0f} s of it (a shared machine)", "`{=file}`"]),
        Row("training throughput, B 64 × T 100", "throughput-bound.jsonl", "#17",
            ["`python benchmarks/train_throughput.py --hidden 512 --layers 2 --batch 64 --seq 100`",
             "2×512: {chars_per_s} chars/s, **{bound_fraction|.3f}** of the GEMM bound measured "
             "in the same run (2×384: {throughput-bound.jsonl::chars_per_s@#18} chars/s, "
             "**{throughput-bound.jsonl::bound_fraction@#18|.3f}**); the median runs of three",
             "`{=file}`"]),
        Row("serving 16 clients at 2×384", "serve-load.jsonl", "case=serve,clients=16",
            ["`OPENBLAS_NUM_THREADS=1 python benchmarks/serve_load.py`",
             "{errors} errors; first character p50 {ttfc_p50_s|.3f} s, p95 {ttfc_p95_s|.3f} s; "
             "{total_chars_per_s} chars/s in total, **{total_over_generate|.2f}×** one "
             "`generate --num 16` batch in the same run", "`{=file}`"]),
        Row("**measured**: two data-parallel ranks against one process, B 64 × T 100", "scaling.jsonl",
            "after~idle machine",
            ["`python benchmarks/scaling.py --rounds 3 --steps 8`",
             "2×384: {chars_per_s@hidden=384,config=two_ranks} against "
             "{chars_per_s@hidden=384,config=one_process} chars/s (**{two_ranks_over_one_process"
             "@hidden=384,two_ranks_over_one_process|.2f}×**); 2×512: "
             "{chars_per_s@hidden=512,config=two_ranks} against "
             "{chars_per_s@hidden=512,config=one_process} (**{two_ranks_over_one_process"
             "@hidden=512,two_ranks_over_one_process|.2f}×**); medians of three rounds",
             "`{=file}`"]),
        Row("**projected**, not measured (no 16-core machine was available): 16 ranks on one "
            "machine, 2×384", "scaling.jsonl",
            "after~idle machine,projection,hidden=384,ranks=16,link~one machine",
            ["the same (its formula: benchmarks/README.md, \"More cores\")",
             "weak scaling, 64 lanes per rank (total batch 1,024): {weak_efficiency|.3f} parallel "
             "efficiency; strong scaling, the default 64 lanes split 16 ways: "
             "{strong_efficiency|.2f}. Assumes no memory-bandwidth sharing between ranks, no "
             "waiting for the slowest rank, the shared-memory bandwidth of one 2-rank Allreduce "
             "timing, a latency of 2 µs (the veth link measured {=v('netns-allreduce.jsonl::latency_s@after~idle rerun,"
             "link=veth unshaped,latency_s') * 1e6|.0f} µs); two single-thread steps at once, no communication, ran "
             "{=median(v('contention.jsonl::step_s@after~idle rerun,contention=2,hidden=384')) / v('contention.jsonl::"
             "step_s.0@after~idle rerun,contention=1,hidden=384')|.2f}× the time of one alone on an idle machine "
             "(`contention.jsonl`: the memory-bandwidth sharing at N = 2; beyond 2 unmeasured). The formula's one check, at "
             "2 ranks × 32 lanes: {=2 * 3200 / (3200 / v('scaling.jsonl::chars_per_s@after~idle "
             "machine,hidden=384,config=rank_lanes_32') + v('scaling.jsonl::allreduce_2_ranks_s"
             "@after~idle machine,hidden=384,allreduce_2_ranks_s'))|,.0f} chars/s predicted, "
             "{scaling.jsonl::chars_per_s@after~idle machine,hidden=384,config=two_ranks} measured "
             "({=2 * 3200 / (3200 / v('scaling.jsonl::chars_per_s@after~idle machine,hidden=384,"
             "config=rank_lanes_32') + v('scaling.jsonl::allreduce_2_ranks_s@after~idle machine,"
             "hidden=384,allreduce_2_ranks_s')) / v('scaling.jsonl::chars_per_s@after~idle "
             "machine,hidden=384,config=two_ranks') - 1|.0%} high)",
             "`{=file}`"]),
        Row("**measured**: one process against two ranks, same 1,095 steps (strong scaling: "
            "the same model)", "ranks-same-steps.jsonl", "step",
            ["`luigi --module pipeline Train`, `train.processes` 1 then 2",
             "{val_nats_per_char@processes=1|.9f} against {val_nats_per_char@processes=2|.9f} "
             "nats/char; two ranks {=v('t@processes=1') / v('t@processes=2')|.2f}× faster in "
             "training seconds, {=v('wall@processes=1') / v('wall@processes=2')|.2f}× in the "
             "stage's wall time", "`{=file}`"]),
        Row("**measured**: the 2-rank Allreduce between two \"hosts\" "
            "(network namespaces) over a veth shaped to 1 Gbit/s", "netns-allreduce.jsonl", "after~idle rerun,link=1gbit",
            ["`sudo python benchmarks/netns_allreduce.py --reps 10`",
             "2×384: {=v('allreduce_s@hidden=384') * 1e3|.1f} ms against the formula's "
             "{=v('projected_s@hidden=384') * 1e3|.1f} ms "
             "({=v('allreduce_s@hidden=384') / v('projected_s@hidden=384')|.1f}×); 2×512: "
             "{=v('allreduce_s@hidden=512') * 1e3|.1f} against {=v('projected_s@hidden=512') * 1e3|.1f} ms "
             "({=v('allreduce_s@hidden=512') / v('projected_s@hidden=512')|.1f}×); one-way latency "
             "{=v('latency_s@latency_s') * 1e6|.0f} µs (the formula assumes 20); the machine otherwise idle (on a loaded one "
             "the same link took 2.4× the formula: benchmarks/README.md)", "`{=file}`"]),
        Row("**measured**: the 10-minute config on two ranks: one host, two namespace hosts over "
            "1 Gbit/s, total batch 128", "ten-minute-ranks.jsonl", "",
            ["`python benchmarks/ten_minute_ranks.py` (as root)",
             "validation nats/char after 600 s: one process {final_val_nats_per_char@run=one process|.4f} "
             "({chars_per_s@run=one process|,.0f} chars/s); two ranks {final_val_nats_per_char@run=a|.4f} "
             "({chars_per_s@run=a|,.0f}); two ranks on two hosts {final_val_nats_per_char@run=b|.4f} "
             "({chars_per_s@run=b|,.0f}); two ranks at total batch 128 {final_val_nats_per_char@run=c|.4f} "
             "({chars_per_s@run=c|,.0f}): strong scaling pays, weak scaling did not in 10 minutes",
             "`{=file}`"]),
        Row("default pipeline with artifacts on S3", "s3-default-pipeline.jsonl", "",
            ["`python benchmarks/s3_pipeline.py` (radosgw on loopback)",
             "report figures equal to the local folder's to the last bit: "
             "{='yes' if v('same_figures@same_figures') else 'no'}; rerun with nothing to do "
             "**{wall_seconds@artifacts=s3,run=rerun|.2f} s** with an empty local cache on the "
             "same machine ({wall_seconds@artifacts=local,run=rerun|.2f} s on a local folder)",
             "`{=file}`"]),
    ], align="llll"),
]

TABLES = README_TABLES + BENCH_TABLES
