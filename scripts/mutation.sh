#!/usr/bin/env bash
# Mutation testing (mutmut) of the core modules, each against only the tests that cover it.
#
#   scripts/mutation.sh [TARGET ...]     (make mutation; default: every target below)
#
# Each target mutates one module in a scratch copy of the project (the working tree is never
# touched) and runs only its tests. Score = detected / checked, where detected = killed or
# timed out, and checked also counts survivors and mutants no selected test reaches ("no
# tests"); mutants left unchecked when the time box ends are listed apart. Results and
# the surviving mutants' diffs go to $MUTATION_DIR (default /tmp/mutation). Time-box a run
# with MUTATION_TIMEOUT (seconds per target, default 1800); MUTATION_CHILDREN (default 2)
# test processes run at once.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="${MUTATION_DIR:-/tmp/mutation}"
TIMEOUT="${MUTATION_TIMEOUT:-1800}"
CHILDREN="${MUTATION_CHILDREN:-2}"

# target -> "module to mutate|test files that cover it[|mutant-name globs: only these functions]"
declare -A TARGETS=(
  [stats]="pipeline/aggregate/stats.py|tests/test_stats.py tests/test_stats_exact.py tests/test_aggregate_scale.py::test_bounded_pvalues_equal_exact_tests_and_holm_over_tested_pairs tests/test_aggregate_scale.py::test_pair_pvalues_match_per_pair_tests_with_missing_examples tests/test_aggregate_scale.py::test_lazy_rank_groups_equal_the_full_matrix_walk tests/test_aggregate_scale.py::test_batched_bootstrap_equals_one_block_at_a_time"
  [ranking]="pipeline/aggregate/ranking.py|tests/test_ranking.py tests/test_stats.py"
  [significance]="pipeline/aggregate/significance.py|tests/test_significance.py tests/test_ranking.py"
  [comparable]="pipeline/aggregate/comparable.py|tests/test_comparable.py"
  [recommendations]="pipeline/aggregate/tables.py|tests/test_tables_values.py|*recommend* *gaps_to_best* *cost_order* *_ship_reason* *_runner_reason* *_gap* *_params*"
  [rouge]="pipeline/scoring/metrics/rouge.py|tests/test_metrics.py tests/test_metric_variants.py"
  [set_overlap]="pipeline/scoring/metrics/set_overlap.py|tests/test_metrics.py"
  [classification]="pipeline/scoring/metrics/classification.py|tests/test_metrics.py"
  [text_norm]="pipeline/core/text_norm.py|tests/test_metrics.py tests/test_metric_variants.py"
  [provenance]="pipeline/core/provenance.py|tests/test_provenance_hashes.py"
  [tables]="pipeline/aggregate/tables.py|tests/test_tables.py tests/test_tables_values.py"
  [learning_curves]="pipeline/aggregate/learning_curves.py|tests/test_learning_curves.py"
  [hf]="pipeline/generators/hf.py|tests/test_hf_keys.py tests/test_hf_trust.py|*perplexity* *HFBackend*identity* *HFBackend*nll*"
  [textgen]="pipeline/generators/textgen.py|tests/test_hf_keys.py tests/test_hf_trust.py tests/test_openai_trust.py"
  [bertscore]="pipeline/scoring/bertscore/engine.py|tests/test_bertscore_engine.py tests/test_trust_cells.py::test_replaced_encoder_weights_rescore_only_bertscore tests/test_bertscore.py::test_matches_bert_score tests/test_bertscore.py::test_mean_aggregation tests/test_bertscore.py::test_empty_strings tests/test_bertscore.py::test_default_baseline_is_shipped_file tests/test_bertscore.py::test_cache_hit_skips_encoder tests/test_bertscore.py::test_hash_and_describe_have_no_path"
)
ORDER=(stats ranking significance comparable recommendations tables learning_curves rouge
       set_overlap classification text_norm provenance hf textgen
       bertscore)
# targets whose tests run torch, which is not fork-safe: their mutants fork from a fork server
FORKSERVER=" hf textgen bertscore "

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ORDER[@]}")
mkdir -p "$OUT"
summary="$OUT/summary.tsv"
printf "target\tmodule\tdetected\tundetected\tunchecked\tscore\n" > "$summary"

for name in "${targets[@]}"; do
  spec="${TARGETS[$name]:?unknown target $name (known: ${ORDER[*]})}"
  IFS='|' read -r module tests globs <<< "$spec"
  work="$OUT/$name"
  rm -rf "$work"
  mkdir -p "$work"
  cp -r "$ROOT/pipeline" "$ROOT/tests" "$ROOT/conf" "$ROOT/scripts" "$ROOT/pyproject.toml" \
    "$work/"
  [ -d "$ROOT/data" ] && cp -r "$ROOT/data" "$work/"
  {
    echo "[mutmut]"
    echo "source_paths=pipeline"
    echo "only_mutate=$module"
    echo "also_copy="
    echo "    conf"
    echo "    scripts"
    [ -d "$ROOT/data" ] && echo "    data"
    if [[ $FORKSERVER == *" $name "* ]]; then echo "process_isolation=forkserver"; fi
    echo "pytest_add_cli_args_test_selection="
    for t in $tests; do echo "    $t"; done
    echo "pytest_add_cli_args="
    echo "    -p"
    echo "    no:cacheprovider"
    echo "    -q"
    echo "    -m"
    echo "    not slow"
  } > "$work/setup.cfg"
  echo "== $name: $module against $tests"
  (cd "$work" && set -f && HF_HUB_OFFLINE=1 PYTHONPATH="$work" timeout "$TIMEOUT" \
     "$PY" -m mutmut run --max-children "$CHILDREN" $globs > "$work/run.log" 2>&1) || true
  (cd "$work" && "$PY" -m mutmut results --all true > "$work/results.txt" 2>&1) || true
  if [ -n "$globs" ]; then  # count only the mutants of the selected functions
    (set -f; while IFS= read -r line; do
       for g in $globs; do if [[ ${line%%:*} == *$g ]]; then echo "$line"; break; fi; done
     done < "$work/results.txt" > "$work/results.sel")
    mv "$work/results.sel" "$work/results.txt"
  fi
  count() { grep -cE ": ($1)\$" "$work/results.txt" || true; }
  detected=$(count "killed|timeout")
  undetected=$(count "survived|no tests")
  unchecked=$(count "not checked")
  score=$("$PY" -c "d,u=$detected,$undetected; print(f'{100*d/(d+u):.1f}%' if d+u else 'n/a')")
  printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$module" "$detected" "$undetected" \
    "$unchecked" "$score" >> "$summary"
  (cd "$work" && for m in $(grep ": survived$" "$work/results.txt" | cut -d: -f1); do
     "$PY" -m mutmut show "$m"; done > "$work/survivors.diff" 2>&1) || true
  echo "   detected $detected, undetected $undetected ($score), unchecked $unchecked;" \
    "survivors: $work/survivors.diff"
done
column -t -s $'\t' "$summary"
