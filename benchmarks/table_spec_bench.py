"""The tables of benchmarks/README.md (see benchmarks/table_spec.py and render_tables.py)."""
from render_tables import Row, Table

BM = "benchmarks/README.md"

MFU = ["{cell}", "{batch} × {seq}", "{=v('params') / 1e6|.2f}M", "{chars_per_s}", "{gflops|.1f}",
       "{gemm_peak_gflops|.0f}", "{mfu|.3f}", "{sample_chars_per_s_batch32}", "{sample_chars_per_s_1}"]
MFU3 = ["{cell@0}", "{batch@0} × {seq@0}", "{=v('params@0') / 1e6|.2f}M", "{chars_per_s@*}",
        "{gflops@*|.1f}", "{gemm_peak_gflops@*|.0f}", "**{mfu@*|.3f}**",
        "{=median(v('sample_chars_per_s_batch32@*'))} (median)",
        "{=median(v('sample_chars_per_s_1@*'))} (median)"]


def bound(before):
    """A row of "Against the GEMM bound": the line itself, and the same case's earlier line."""
    return ["{blas_threads}", "{chars_per_s}", "{gemm_bound_chars_per_s}", "{bound_fraction|.3f}",
            "{throughput-bound.jsonl::bound_fraction@#%d|.3f}" % before,
            "{sample_chars_per_s_batch32}", "{sample_chars_per_s_1}"]


def vs(key):
    return "{%s} ({=v('%s') / v('chars_per_s_serial') - 1|+.0%%})" % (key, key)


WAVE = ["{chars_per_s_serial}", "{chars_per_s_layers2} / {chars_per_s_layers5} / "
        "{chars_per_s_layers10} (best {=max(v('chars_per_s_layers2'), v('chars_per_s_layers5'), "
        "v('chars_per_s_layers10')) / v('chars_per_s_serial') - 1|+.0%})", vs("chars_per_s_lanes")]
SERVE = ["{ttfc_p50_s|.3f} s", "{ttfc_p95_s|.3f} s", "{client_chars_per_s}", "{total_chars_per_s}",
         "{generate_num_n_chars_per_s}", "{total_over_generate|.2f}", "{errors}",
         "{texts_equal_to_generate}"]


def s3(stage):
    """Wall seconds and peak RSS of one stage, local / S3, at 10 and 100 MB, and the difference."""
    out = []
    for mb in (10, 100):
        f = f"scale-{mb}mb-local-vs-s3.jsonl::%s@stage={stage},artifacts=%s"
        out += [f"{{{f % ('wall_seconds', 'local')}|.1f}} / {{{f % ('wall_seconds', 's3')}|.1f}} s",
                f"{{{f % ('peak_rss_mb', 'local')}|.0f}} / {{{f % ('peak_rss_mb', 's3')}|.0f}} MB",
                f"{{=v('{f % ('peak_rss_mb', 's3')}') - v('{f % ('peak_rss_mb', 'local')}')|+.0f}} MB"]
    return out


ADAPT0 = ["{evaluate_seconds|.1f}", "—", "—", "—"]
ADAPT1 = ["{evaluate_seconds|.1f}", "—",
          "{lstm_cache.nats_per_char|.4f} [{lstm_cache.ci95.0|.4f}, {lstm_cache.ci95.1|.4f}], "
          "{lstm_cache.seconds|.1f} s", "—"]
ADAPT2 = ["{evaluate_seconds|.1f}",
          "{lstm_dynamic.nats_per_char|.4f} [{lstm_dynamic.ci95.0|.4f}, {lstm_dynamic.ci95.1|.4f}], "
          "{lstm_dynamic.seconds|.0f} s",
          "{lstm_cache.nats_per_char|.4f}, {lstm_cache.seconds|.1f} s",
          "{lstm_dynamic_cache.nats_per_char|.4f} [{lstm_dynamic_cache.ci95.0|.4f}, "
          "{lstm_dynamic_cache.ci95.1|.4f}], {lstm_dynamic_cache.seconds|.1f} s"]
# benchmarks/report_line.py lines: the seconds each adaptive row added are under adaptive_seconds
ADAPT_T1 = ["{evaluate_seconds|.1f}", "—",
            "{lstm_cache.nats_per_char|.4f} [{lstm_cache.ci95.0|.4f}, {lstm_cache.ci95.1|.4f}], "
            "{adaptive_seconds.lstm_cache|.1f} s", "—"]
ADAPT_T2 = ["{evaluate_seconds|.1f}",
            "{lstm_dynamic.nats_per_char|.4f} [{lstm_dynamic.ci95.0|.4f}, {lstm_dynamic.ci95.1|.4f}], "
            "{adaptive_seconds.lstm_dynamic|.0f} s",
            "{lstm_cache.nats_per_char|.4f}, {adaptive_seconds.lstm_cache|.1f} s",
            "{lstm_dynamic_cache.nats_per_char|.4f} [{lstm_dynamic_cache.ci95.0|.4f}, "
            "{lstm_dynamic_cache.ci95.1|.4f}], {adaptive_seconds.lstm_dynamic_cache|.2f} s"]
SCORE = ["{lanes}", "{chars_scored}", "{wall_s|,.1f} s", "{chars_per_s}", "{peak_rss_mb|.1f} MB"]
# time_to_quality.py lines: points at 120 s apart (10 minutes), 300 s apart (the hour)
TTQ10 = ["{=v('params@-1') / 1e6|.2f}M", "{chars_per_s@-1}"] + \
    ["{val_nats_per_char@%d|.4f}" % i for i in range(5)] + ["{val_window256_nats_per_char@-1|.4f}"]
TTQ10B = TTQ10[1:]
H = "{val_nats_per_char@%d|.4f} ({train_nats_per_char@%d|.3f})"
TTQ60 = ["{chars_per_s@-1}"] + [H % (i, i) for i in (1, 2, 3, 4, 5, 8, 11)]
TTQ60_25 = ["{chars_per_s@-1}"] + [H % (i, i) for i in (1, 2, 3, 4)] + ["stopped", "", ""]
VAL12 = ["{val_nats_per_char@%d|.4f}" % i for i in range(12)]
TRAIN12 = ["{train_nats_per_char@%d|.3f}" % i for i in range(12)]
EPOCH12 = ["{epoch@%d}" % i for i in range(12)]
IDLE = "after~idle machine,"
RANKS = ["{chars_per_s@config=one_process}", "{chars_per_s@config=one_rank}",
         "**{chars_per_s@config=two_ranks}**", "**{two_ranks_over_one_process@grad_bytes|.3f}**",
         "{chars_per_s@config=rank_lanes_32} / {chars_per_s@config=rank_lanes_16} / "
         "{chars_per_s@config=rank_lanes_8} / {chars_per_s@config=rank_lanes_4}",
         "{=v('allreduce_2_ranks_s@grad_bytes') * 1000|.1f} ms"]
LINKS = ("link~one machine", "link=1 Gbit/s", "link=10 Gbit/s", "link=25 Gbit/s")
WEAK = ["{weak_efficiency@%s|.3f}" % link for link in LINKS]
STRONG = ["{strong_efficiency@%s|.3f}" % link for link in LINKS]
GEN = ["{sample_s|.2f} s", "{greedy_s|.2f} s", "{beam4_s|.2f} s", "{beam4_norepeat12_s|.2f} s",
       "{beam4_over_sample|.1f}"]
GEN3 = [c.replace(".2f", ".3f") for c in GEN]

# netns_allreduce.py: per link, the two models' Allreduce beside the formula's, and the latencies
NETNS = ["{=v('allreduce_s@hidden=384') * 1e3|.1f} ms", "{=v('projected_s@hidden=384') * 1e3|.1f} ms",
         "{=v('allreduce_s@hidden=512') * 1e3|.1f} ms", "{=v('projected_s@hidden=512') * 1e3|.1f} ms",
         "{=v('latency_s@latency_s') * 1e6|.0f} µs", "{=v('allreduce_8b_s@allreduce_8b_s') * 1e6|.0f} µs"]

# benchmarks/ten_minute_ranks.py lines (and one process, from the same session's Evaluate)
TEN = ["{processes}", "{hosts}", "{batch_size}", "{learning_rate}", "{steps}", "{chars_per_s|,.0f}",
       "**{final_val_nats_per_char|.4f}**"]

BENCH_TABLES = [
    Table("ten-minute-ranks", BM, ["run", "processes", "hosts", "total batch", "peak lr", "steps",
                                   "chars/s", "validation nats/char after 600 s"], [
        Row("one process", "ten-minute-ranks.jsonl", "run=one process", TEN),
        Row("a: strong scaling", "ten-minute-ranks.jsonl", "run=a", TEN),
        Row("b: strong scaling, two hosts", "ten-minute-ranks.jsonl", "run=b", TEN),
        Row("c: weak scaling (64 lanes a rank), lr × √2", "ten-minute-ranks.jsonl", "run=c", TEN),
        Row("b again (a later sitting, run first)", "ten-minute-ranks-repeat.jsonl", "run=b", TEN),
        Row("a again (run after it)", "ten-minute-ranks-repeat.jsonl", "run=a", TEN),
    ], align="lrlrrrrr"),
    Table("throughput-mfu", BM, ["hidden × layers", "cell", "batch × seq", "params", "chars/s",
                                 "model GFLOP/s", "GEMM peak", "MFU", "sample chars/s, 32 streams",
                                 "1 stream"], [
        Row("512 × 2", "throughput.jsonl", "hidden=512,cell=cifg,batch=64", MFU3),
        Row("384 × 2", "throughput.jsonl", "hidden=384", MFU),
        Row("256 × 2", "throughput.jsonl", "hidden=256", MFU),
        Row("512 × 2", "throughput.jsonl", "cell=lstm", MFU),
        Row("512 × 2", "throughput.jsonl", "batch=128", MFU),
    ], align="lllrrrrrrr"),
    Table("throughput-bound", BM, ["hidden × layers", "BLAS threads", "chars/s", "GEMM bound",
                                   "bound fraction", "before", "sample chars/s, 32 streams",
                                   "1 stream"],
          [Row("{hidden} × {layers}", "throughput-bound.jsonl", f"#{21 + i}", bound(i))
           for i in range(1, 9)]),
    Table("wavefront", BM, ["hidden × layers", "one thread (BLAS on 2)",
                            "wavefront, chunk 2 / 5 / 10", "lanes split"],
          [Row("{hidden} × {layers}", "wavefront-ab.jsonl", f"#{i}", WAVE) for i in (1, 2, 3)]),
    Table("serve-load", BM, ["clients", "first char p50", "p95", "chars/s per client",
                             "chars/s total", "`generate --num N` chars/s", "total / generate",
                             "errors", "texts equal to `generate`'s"],
          [Row("{clients}", "serve-load.jsonl", f"case=serve,clients={n}", SERVE)
           for n in (1, 4, 16, 64)], align="rrrrrrrrr"),
    Table("s3-stages", BM, ["stage", "10 MB: wall, local / S3", "peak RSS, local / S3",
                            "S3 − local", "100 MB: wall, local / S3", "peak RSS, local / S3",
                            "S3 − local"],
          [Row(s, None, "", s3(s)) for s in
           ("Download", "BuildVocab", "EncodeShards", "Train", "Sample", "Evaluate")],
          align="lllrllr"),
    Table("adaptive-rows", BM, ["Evaluate with", "seconds", "LSTM + dynamic", "LSTM + cache",
                                "dynamic + cache"], [
        Row("**test split**, cache (the default)", "test-split.jsonl", "run~default pipeline (pipeline.yaml)", ADAPT_T1),
        Row("**test split**, cache and dynamic (one stream, guard)", "test-split.jsonl", "run~default pipeline with", ADAPT_T2),
        Row("earlier: validation split, both rows off (the report before)", "adaptive-rows.jsonl", "#1", ADAPT0),
        Row("earlier: validation split, cache", "adaptive-rows.jsonl", "#2", ADAPT1),
        Row("earlier: validation split, cache and dynamic (16 shared lanes)", "adaptive-rows.jsonl", "#3", ADAPT2),
    ], align="lrlll"),
    Table("score-memory", BM, ["text", "lanes", "chars scored", "wall", "chars/s", "peak RSS"], [
        Row("10 MB", "score-memory.jsonl", "#1", SCORE),
        Row("10 MB", "score-memory.jsonl", "#2", SCORE),
        Row("**1 GB**", "score-memory.jsonl", "#3", SCORE),
    ]),
    Table("ttq-10min", BM, ["config", "params", "chars/s", "120 s", "240 s", "360 s", "480 s",
                            "600 s", "600 s, 256-windows"], [
        Row("2×512 CIFG, dropout 0.1, lr 2e-3 (`benchmarks/sweeps/cifg512.yaml`)", "cifg512-600s.jsonl", "", TTQ10),
        Row("2×512 LSTM (uncoupled), dropout 0.1, lr 2e-3 (`benchmarks/sweeps/lstm512.yaml`)", "lstm512-600s.jsonl", "", TTQ10),
        Row("**2×384 CIFG, dropout 0.1, lr 2e-3** (`benchmarks/sweeps/cifg384.yaml`)", "cifg384-600s.jsonl", "", TTQ10),
        Row("2×256 CIFG, dropout 0.1, lr 2e-3 (`benchmarks/sweeps/cifg256.yaml`)", "cifg256-600s.jsonl", "", TTQ10),
        Row("2×384 CIFG, dropout 0.1, lr 3e-3 (`benchmarks/sweeps/cifg384-lr3e-3.yaml`)", "cifg384-lr3e-3-600s.jsonl", "", TTQ10),
        Row("2×384 CIFG, no dropout, lr 2e-3 (`benchmarks/sweeps/cifg384-nodrop.yaml`)", "cifg384-nodrop-600s.jsonl", "", TTQ10),
    ]),
    Table("ttq-10min-later", BM, ["config", "chars/s", "120 s", "240 s", "360 s", "480 s", "600 s",
                                  "600 s, 256-windows"], [
        Row("`configs/tinyshakespeare-10min.yaml` as it was then (2×384, dropout 0.1, lr 3e-3)", "tinyshakespeare-10min-600s.jsonl", "", TTQ10B),
        Row("2×384, no per-step dropout; weight drop 0.25, locked 0.1 / 0.15 / 0.15, EMA 0.995 (`benchmarks/sweeps/cifg384-awd.yaml`)", "cifg384-awd-600s.jsonl", "", TTQ10B),
        Row("2×384, dropout 0.1, weight drop 0.2, EMA 0.995 (`benchmarks/sweeps/cifg384-wdrop20-ema.yaml`)", "cifg384-wdrop20-ema-600s.jsonl", "", TTQ10B),
        Row("**the same at peak rate 4e-3** (`benchmarks/sweeps/cifg384-wdrop20-ema-lr4e-3.yaml`, now `configs/tinyshakespeare-10min.yaml`; a later session)", "cifg384-wdrop20-ema-lr4e-3-600s.jsonl", "", TTQ10B),
        Row("`configs/tinyshakespeare-10min.yaml` (the row above) on the engine with gate-major loops (a later session)", "tinyshakespeare-10min-600s-gatemajor.jsonl", "", TTQ10B),
        Row("the same at 2×512 (`benchmarks/sweeps/cifg512-wdrop20-ema-lr4e-3.yaml`, same session)", "cifg512-wdrop20-ema-lr4e-3-600s.jsonl", "", TTQ10B),
    ]),
    Table("ttq-60min", BM, ["config", "chars/s", "10 min", "15 min", "20 min", "25 min", "30 min",
                            "45 min", "60 min"], [
        Row("2×512 CIFG, dropout 0.35, Adam 2e-3 (`sweeps60/cifg512-d35.yaml`)", "cifg512-d35-3600s.jsonl", "", TTQ60_25),
        Row("2×512 CIFG, dropout 0.5, Adam 2e-3 (`sweeps60/cifg512-d50.yaml`)", "cifg512-d50-3600s.jsonl", "", TTQ60_25),
        Row("**2×512 CIFG, dropout 0.35, AdamW 2e-3, weight decay 0.2** (`sweeps60/cifg512-d35-wd20.yaml`, the 60-minute config then)", "cifg512-d35-wd20-3600s.jsonl", "", TTQ60),
        Row("2×512 CIFG, dropout 0.35, AdamW 2e-3, weight decay 0.5 (`sweeps60/cifg512-d35-wd50.yaml`)", "cifg512-d35-wd50-3600s.jsonl", "", TTQ60_25),
    ]),
    Table("hour-awd", BM, ["minutes"] + [str(5 * i) for i in range(1, 13)], [
        Row("2×512: validation", "cifg512-awd-3600s.jsonl", "", VAL12),
        Row("2×512: training loss (masks on)", "cifg512-awd-3600s.jsonl", "", TRAIN12),
        Row("2×512: passes over the text", "cifg512-awd-3600s.jsonl", "", EPOCH12),
        Row("2×768: validation", "cifg768-awd-3600s.jsonl", "", VAL12),
        Row("2×768: training loss (masks on)", "cifg768-awd-3600s.jsonl", "", TRAIN12),
        Row("2×768: passes over the text", "cifg768-awd-3600s.jsonl", "", EPOCH12),
        Row("2×768, faster engine: validation", "cifg768-awd-t1-3600s.jsonl", "", VAL12),
        Row("2×768, faster engine: training loss (masks on)", "cifg768-awd-t1-3600s.jsonl", "", TRAIN12),
        Row("2×768, faster engine: passes over the text", "cifg768-awd-t1-3600s.jsonl", "", EPOCH12),
    ]),
    Table("scaling", BM, ["model", "one process, BLAS 2 threads", "one rank, 1 thread",
                          "**two ranks**", "two ranks / one process",
                          "rank at 32 / 16 / 8 / 4 lanes", "Allreduce, 2 ranks"], [
        Row("2×384 ({=v('grad_bytes@grad_bytes') / 1e6|.1f} MB gradient)", "scaling.jsonl", IDLE + "hidden=384,!projection", RANKS),
        Row("2×512 ({=v('grad_bytes@grad_bytes') / 1e6|.1f} MB gradient)", "scaling.jsonl", IDLE + "hidden=512,!projection", RANKS),
    ], align="lrrrrlr"),
    Table("projection", BM, ["model, ranks", "scaling", "one machine (shared memory)",
                             "1 Gbit/s", "10 Gbit/s", "25 Gbit/s"], [
        Row("2×384, 16", "scaling.jsonl", IDLE + "projection,hidden=384,ranks=16", ["weak: 64 lanes per rank"] + WEAK),
        Row("2×384, 16", "scaling.jsonl", IDLE + "projection,hidden=384,ranks=16", ["strong: B = 64 split N ways"] + STRONG),
        Row("2×384, 64", "scaling.jsonl", IDLE + "projection,hidden=384,ranks=64", ["weak: 64 lanes per rank"] + WEAK),
        Row("2×512, 16", "scaling.jsonl", IDLE + "projection,hidden=512,ranks=16", ["weak: 64 lanes per rank"] + WEAK),
        Row("2×512, 16", "scaling.jsonl", IDLE + "projection,hidden=512,ranks=16", ["strong: B = 64 split N ways"] + STRONG),
    ], align="llrrrr"),
    Table("netns-allreduce", BM, ["link", "2×384 (5.7 MB) measured", "formula (N = 2)",
                                  "2×512 (10.0 MB) measured", "formula", "one-way latency "
                                  "(1-byte ping-pong / 2)", "8-byte Allreduce"], [
        Row("veth, unshaped", "netns-allreduce.jsonl", "after~idle rerun,link=veth unshaped", NETNS[:1] + ["–"] + NETNS[2:3] + ["–"] + NETNS[4:]),
        Row("10 Gbit/s", "netns-allreduce.jsonl", "after~idle rerun,link=10gbit", NETNS),
        Row("1 Gbit/s", "netns-allreduce.jsonl", "after~idle rerun,link=1gbit", NETNS),
        Row("1 Gbit/s, a loaded machine (load ~4.5)", "netns-allreduce.jsonl", "after~SHARED,link=1gbit", NETNS),
    ]),
    Table("generate-busy", BM, ["BLAS threads", "sample", "greedy", "beam, width 4",
                                "beam 4, `--no-repeat-ngram 12`", "beam 4 / sample"],
          [Row("{threads}", "generate_speed.jsonl", f"#{i}", GEN) for i in range(1, 7)],
          align="llllll"),
    Table("generate-idle", BM, ["BLAS threads", "sample", "greedy", "beam, width 4",
                                "beam 4, `--no-repeat-ngram 12`", "beam 4 / sample"],
          [Row("{threads}", "generate_speed.jsonl", f"#{i}", GEN3) for i in (7, 8)],
          align="llllll"),
]
