"""Do the tests catch a broken feature? Each mutant breaks one feature the way a regression would,
in a copy of the working tree, and runs the tests that guard it: they must fail. The same tests
run first on the unbroken copy, where they must pass (the baseline).

    .venv/bin/python -m ft_pipeline_tests.mutants            # every mutant (~10 min on 2 cores)
    .venv/bin/python -m ft_pipeline_tests.mutants resume ui  # mutants whose name holds a word

Prints one line per mutant and, last, how many were caught. Exit 1 if a baseline fails or a mutant
survives. The working tree itself is never edited.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


T = "ft_pipeline_tests/"
MUTANTS = [
    Mutant("resume ignores the config fingerprint", "ft_pipeline/core/training/checkpoints.py",
           'if recorded.get("fingerprint") == fingerprint and recorded.get("data") == data_digest:',
           'if recorded and recorded.get("data") == data_digest:',
           (T + "core/training/test_resume.py::test_changed_config_does_not_resume",)),
    Mutant("resume ignores the training data", "ft_pipeline/core/training/checkpoints.py",
           'if recorded.get("fingerprint") == fingerprint and recorded.get("data") == data_digest:',
           'if recorded.get("fingerprint") == fingerprint:',
           (T + "core/training/test_resume.py::test_changed_data_does_not_resume",)),
    Mutant("ingest does not wait for a forget", "ft_pipeline/core/data/ingest.py",
           "    with erasure_lock(shared=True):  # no forget between",
           "    with __import__('contextlib').nullcontext():  # no forget between",
           (T + "attack/test_races.py::test_a_forget_during_an_ingest_reaches_what_the_ingest_writes",)),
    Mutant("promotion ignores erasures that landed while it trained", "ft_pipeline/core/release/release.py",
           'erased = erased_digests() & set(trained_on.get("trained_on", []))',
           "erased = set()",
           (T + "attack/test_races.py::test_a_promotion_after_a_forget_refuses_a_model_trained_on_the_erased_record",)),
    Mutant("the street rule's repetitions unbounded again", "ft_pipeline/core/data/redaction/patterns.py",
           "[\\p{L}-]{0,40}(?:strasse", "[\\p{L}-]*(?:strasse",
           (T + "attack/test_backtracking.py::test_every_recognizer_is_linear",)),
    Mutant("a canary pattern may have two groups", "ft_pipeline/core/task.py",
           "user_regex.problem(getattr(self, name), max_groups=1)", "user_regex.problem(getattr(self, name))",
           (T + "attack/test_hostile_task_file.py::test_a_task_regex_is_checked_when_the_task_loads",)),
    Mutant("resume never resumes", "ft_pipeline/core/training/checkpoints.py",
           "return last_complete_checkpoint(ckpt_dir)", "return None",
           (T + "core/training/test_resume.py",)),
    Mutant("gguf conversion keeps the quantization flags", "ft_pipeline/core/training/base_model.py",
           "        clear_quantization_flags(model)\n        tmp =", "        tmp =",
           (T + "core/training/test_base_model.py::test_bundled_gguf_converts_to_a_plain_model_that_trains_and_generates",)),
    Mutant("residual-pii gate finds nothing", "ft_pipeline/core/data/residual_pii.py",
           "spans = iter(analyze_texts([text for _, _, turns in batch for _, text in turns], config))",
           "spans = iter([[] for _, _, turns in batch for _ in turns])",
           (T + "defs/test_checks.py::test_residual_pii_gate",
            T + "defs/test_residual_pii_gate.py::test_a_residual_name_fails_the_gate_with_its_location_and_without_its_text")),
    Mutant("export gates judge the task's own system prompt", "ft_pipeline/core/data/residual_pii.py",
           'if not (t.get("role") == "system" and t.get("content") in skip)]', "]",
           (T + "defs/test_residual_pii_gate.py::test_a_task_prompt_that_trips_the_ner_passes_every_export_gate",
            T + "core/data/test_residual_pii.py::test_a_task_prompt_that_trips_the_ner_loads_and_the_export_scan_leaves_it_out")),
    Mutant("export gates skip a record's own system turn too", "ft_pipeline/core/data/residual_pii.py",
           'if not (t.get("role") == "system" and t.get("content") in skip)]', 'if t.get("role") != "system"]',
           (T + "core/data/test_residual_pii.py::test_a_records_own_system_turn_is_still_judged",)),
    Mutant("task text check takes NER's word for a name", "ft_pipeline/core/data/task_text.py",
           "if span.recognizer != NER or any(w in known for w in words):", "if True:",
           (T + "core/data/test_residual_pii.py::test_a_task_prompt_that_trips_the_ner_loads_and_the_export_scan_leaves_it_out",)),
    Mutant("task text check finds nothing", "ft_pipeline/core/data/task_text.py",
           "if span.recognizer != NER or any(w in known for w in words):", "if False:",
           (T + "core/data/test_residual_pii.py::test_a_real_name_or_number_in_the_system_prompt_is_a_task_file_error",)),
    Mutant("task text check skips the confidential screen", "ft_pipeline/core/data/task_text.py",
           "if reason := screen_text(text, config.screening):", "if reason := None:",
           (T + "core/data/test_residual_pii.py::test_a_deny_term_in_the_system_prompt_is_a_task_file_error",)),
    Mutant("run loads the task without checking its text", "ft_pipeline/runner.py",
           "        check_task_text(task)  # a name in the system prompt", "        # a name in the system prompt",
           (T + "cli/test_pii_report_cli.py::test_run_refuses_a_real_name_in_the_system_prompt_before_any_work",)),
    Mutant("task asset loads the task without checking its text", "ft_pipeline/defs/task.py",
           "        check_task_text(loaded)  #", "        #",
           (T + "defs/test_residual_pii_gate.py::test_the_task_asset_refuses_a_real_name_in_the_system_prompt",)),
    Mutant("pii-report prints the finding it should mask", "ft_pipeline/core/data/residual_pii.py",
           'window = window[:start - left] + f"<<{entity}>>" + window[end - left:]', "pass",
           (T + "cli/test_pii_report_cli.py::test_pii_report_shows_where_with_the_finding_masked",
            T + "core/data/test_residual_pii.py::test_context_masks_every_finding_in_its_window")),
    Mutant("release merges the base without the adapter", "ft_pipeline/core/release/registry.py",
           "merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()", "merged = model",
           (T + "defs/test_release.py::test_merged_weights_are_base_plus_adapter",)),
    Mutant("release copies the adapter's config without its weights", "ft_pipeline/core/release/release.py",
           'shutil.copytree(adapter, staging / "adapter")',
           'shutil.copytree(adapter, staging / "adapter", ignore=shutil.ignore_patterns("adapter_model.safetensors"))',
           (T + "defs/test_release.py::test_promotion_publishes_what_was_trained_and_judged",)),
    Mutant("the smoke test lets a mute release through", "ft_pipeline/core/release/release.py",
           "if not prompts or unanswered:", "if not prompts:",
           (T + "core/release/test_release.py",)),
    Mutant("model card drops the gate verdicts", "ft_pipeline/core/release/model_card.py",
           "    for check in lineage.get(\"checks\", []):\n", "    for check in []:\n",
           (T + "defs/test_release.py::test_promotion_publishes_what_was_trained_and_judged",)),
    Mutant("ui serves another module than the definitions", "workspace.yaml",
           "module_name: ft_pipeline.definitions", "module_name: ft_pipeline.defs.data.assets",
           (T + "e2e/test_ui.py::test_the_ui_serves_the_designed_graph",)),
    Mutant("stop_after_json is ignored", "ft_pipeline/core/release/generation.py",
           "if stop_after_json else {}", "if False else {}",
           (T + "core/release/test_generation.py::test_stop_after_json_ends_each_answer_at_its_closing_brace",)),
    Mutant("make demo no longer sets up .venv", "Makefile", "demo: setup\n", "demo:\n",
           (T + "e2e/test_documented_commands.py",)),
    Mutant("readme's demo command is not what make runs", "Makefile",
           "\t$(VENV)/bin/ft-pipeline demo\n", "\t$(VENV)/bin/ft-pipeline run data/demo\n",
           (T + "e2e/test_documented_commands.py",)),
    Mutant("sources_ready_sensor retrains on unchanged data", "ft_pipeline/defs/automation/sensors.py",
           "if redacted_trained_on(context.instance) == now:", "if False:",
           (T + "e2e/test_demo_then_ui.py",)),
    Mutant("forget accepts a blank --value", "ft_pipeline/core/erasure/requests.py",
           "if any(not v for v in given):", "if False:",
           (T + "cli/test_erasure_cli.py",)),
    Mutant("forget replaces a linked file instead of rewriting its target", "ft_pipeline/core/erasure/copies.py",
           "found.setdefault(target)", "found.setdefault(path)",
           (T + "cli/test_erasure_cli.py::test_forget_reaches_every_format_and_link_and_counts_only_what_changed",)),
    Mutant("erasure matches values by substring again", "ft_pipeline/core/data/suppression.py",
           "return bool(self.values) and any(next(self._hits(tokens(text)), None) for text in _strings(obj))",
           "return any(v in t.casefold() for t in _strings(obj) for v in self.values)",
           (T + "core/erasure/test_formats.py::test_values_match_whole_tokens",)),
    Mutant("the suppression list keeps values in clear", "ft_pipeline/core/data/suppression.py",
           '"digest": keyed_digest(" ".join(seq), VALUE_PURPOSE),', '"digest": " ".join(seq),',
           (T + "cli/test_erasure_cli.py::test_forget_reaches_every_format_and_link_and_counts_only_what_changed",)),
    Mutant("yaml numbers read as YAML 1.1 does", "ft_pipeline/core/training/config.py",
           "number = parse_number(value)", "number = value if isinstance(value, (int, float)) else None",
           (T + "core/training/test_config.py",)),
    Mutant("a mistaken FT_PIPELINE_TRAINER_PROCESSES stops the code location", "ft_pipeline/defs/resources.py",
           'raw = os.environ.get("FT_PIPELINE_TRAINER_PROCESSES", "1")\n    if raw.strip().isdigit() and int(raw) >= 1:',
           'raw = os.environ.get("FT_PIPELINE_TRAINER_PROCESSES", "1")\n    if True:',
           (T + "defs/test_training_resource.py::test_the_code_location_loads_with_a_mistaken_trainer_variable",)),
    Mutant("a protected-documents typo turns screening off", "ft_pipeline/core/data/redaction/config.py",
           "        if not matched:\n", "        if False:\n",
           (T + "defs/test_user_mistakes.py::test_a_protected_documents_typo_stops_redaction",)),
    Mutant("a .bin-only model is sized 0", "ft_pipeline/core/training/model_stats.py",
           "    raise FileNotFoundError(f\"base_model: {model_dir} has no weights", "    return 0\n    raise FileNotFoundError(f\"base_model: {model_dir} has no weights",
           (T + "core/training/test_model_stats.py",)),
    Mutant("a run shorter than its logging interval logs nothing", "ft_pipeline/core/training/train.py",
           "                control.should_log = True\n", "                pass\n",
           (T + "core/training/test_methods.py::test_every_run_logs_its_last_step",)),
    Mutant("qlora is not checked before loading", "ft_pipeline/core/training/model_setup.py",
           "    if config.qlora:\n        check_qlora(cuda)\n", "",
           (T + "core/training/test_sft.py::test_qlora_without_a_usable_bitsandbytes_is_one_line",)),
    Mutant("qlora loads the base unquantized", "ft_pipeline/core/training/model_setup.py",
           "quantization_config=quant,", "quantization_config=None,",
           (T + "core/training/test_sft.py::test_qlora_trains_on_a_4bit_base",)),
    Mutant("a 7B preset trains the bundled 135M model", "ft_pipeline/defs/training/assets.py",
           'training_plan.training_config("sft").base_model if training_plan.preset else DEFAULT_BASE_MODEL',
           "DEFAULT_BASE_MODEL",
           (T + "defs/test_user_mistakes.py::test_without_a_base_model_the_presets_own_is_loaded_and_priced",)),
    Mutant("a missing local base model is found only after ingest", "ft_pipeline/runner.py",
           '    _check_local_base_model(base_model, "--base-model" if request.base_model else f"{request.preset}: base_model")\n',
           "",
           (T + "e2e/test_run_tasks.py::test_a_local_base_model_that_cannot_be_used_is_one_line_before_anything_runs",)),
    Mutant("task-file sections are checked only by the assets that read them", "ft_pipeline/core/task.py",
           "        check_sections(self, fail)\n", "",
           (T + "e2e/test_run_tasks.py::test_a_bad_task_file_is_one_line_naming_file_and_field",)),
    Mutant("the command line does not say why a step failed", "ft_pipeline/cli.py",
           'else f"step {summary.failed_step} failed: {summary.failure}")', 'else f"step {summary.failed_step} failed")',
           (T + "e2e/test_run_tasks.py::test_a_step_that_stops_says_why_on_the_command_line",)),
    Mutant("a source quarantined whole passes ingest", "ft_pipeline/defs/data/assets.py",
           '    if not summary["records"]:  # nothing for the steps downstream', '    if False:  # nothing for the steps downstream',
           (T + "e2e/test_run_tasks.py::test_a_source_whose_every_record_is_quarantined_stops_at_ingest_saying_why",)),
    Mutant("contamination planned in one pass", "ft_pipeline/core/data/splits.py",
           "MAX_PASSES = 20", "MAX_PASSES = 1",
           (T + "core/data/test_export.py::test_a_chain_of_near_copies_is_followed_until_no_held_out_item_copies_train",)),
    Mutant("redaction runs once", "ft_pipeline/core/data/redaction/stream.py",
           "MAX_PASSES = 3", "MAX_PASSES = 1",
           (T + "core/data/test_redaction.py::test_what_the_residual_gate_would_find_in_redacted_text_is_redacted_too",)),
    Mutant("DPO trains with dp: true, silently without DP", "ft_pipeline/core/training/privacy.py",
           'if config.method != "sft":', "if False:",
           (T + "core/training/test_dp.py::test_dpo_and_grpo_refuse_dp_by_name",)),
    Mutant("a non-DP rerun keeps the DP run's privacy.json", "ft_pipeline/core/training/checkpoints.py",
           'OPTIONAL_FILES = ("privacy.json",)', "OPTIONAL_FILES = ()",
           (T + "core/training/test_dp.py::test_a_non_dp_rerun_into_a_dp_folder_drops_its_privacy_record",)),
    Mutant("record ids leave the raw zone unkeyed", "ft_pipeline/core/data/redaction/stream.py",
           'yield fields.pseudonymize(record, self.config.fields), counts', 'yield record, counts',
           (T + "core/data/test_fields.py::test_undeclared_fields_are_screened_and_ids_and_annotators_digested",
            T + "defs/test_field_canaries.py")),
    Mutant("undeclared fields are kept instead of screened", "ft_pipeline/core/data/redaction/fields.py",
           'DEFAULT = "screen"', 'DEFAULT = "keep"',
           (T + "core/data/test_fields.py::test_undeclared_fields_are_screened_and_ids_and_annotators_digested",
            T + "defs/test_field_canaries.py")),
    Mutant("the bias audit groups by undeclared attributes", "ft_pipeline/core/data/redaction/fields.py",
           'if action(fields, ATTRIBUTE + k) == "keep"}', 'if action(fields, ATTRIBUTE + k) != "redact"}',
           (T + "core/data/test_fields.py::test_only_attributes_declared_keep_reach_the_bias_audit",
            T + "defs/test_field_canaries.py::test_the_bias_audit_compares_the_declared_attributes_only")),
    Mutant("annotators leave the raw zone unkeyed", "ft_pipeline/core/data/redaction/fields.py",
           'new["labels"] = [{"annotator": pseudonym(item["annotator"]),', 'new["labels"] = [{"annotator": item["annotator"],',
           (T + "core/data/test_fields.py::test_undeclared_fields_are_screened_and_ids_and_annotators_digested",
            T + "defs/test_field_canaries.py")),
    Mutant("the fields section may keep ids in clear", "ft_pipeline/core/data/redaction/fields.py",
           'if name in DIGESTED and action != "pseudonymize":', 'if False:',
           (T + "core/data/test_fields.py::test_bad_declarations_are_refused_naming_the_field",)),
    Mutant("the digest key is not secret", "ft_pipeline/core/digest.py",
           'os.write(fd, os.urandom(KEY_BYTES))', 'os.write(fd, bytes(KEY_BYTES))',
           (T + "core/data/test_fields.py::test_keyed_digests_are_stable_within_a_home_and_differ_between_homes",)),
    Mutant("forget leaves adapters trained on the erased record", "ft_pipeline/core/erasure/adapters.py",
           'hits = set(manifest.get("trained_on", [])) & digests', 'hits = set()',
           (T + "core/erasure/test_adapters.py",)),
    Mutant("forget leaves the erased ids in the registry's lineage", "ft_pipeline/core/erasure/marks.py",
           'found.append({"name": name, "version": version, "records": removed})', 'pass',
           (T + "core/erasure/test_adapters.py::test_lineage_is_scrubbed_of_erased_ids_and_digests",)),
    Mutant("the inventory lists a place nobody writes instead of the export", "ft_pipeline/core/erasure/inventory.py",
           '"data/jsonl_export/*/*.jsonl"', '"data/jsonl_export/*.jsonl"',
           (T + "core/erasure/test_inventory.py",)),
    Mutant("forget looks for raw ids only outside the raw zone", "ft_pipeline/core/erasure/copies.py",
           'return set(ids) | {keyed_digest(i) for i in ids}', 'return set(ids)',
           (T + "core/data/test_fields.py::test_forget_by_id_finds_the_redacted_copy_by_its_keyed_digest",)),
    Mutant("the erasure log keeps the erased record's pseudonym", "ft_pipeline/core/digest.py",
           'message = f"{purpose}\\0{value}" if purpose else str(value)', 'message = str(value)',
           (T + "core/data/test_fields.py::test_forget_by_id_finds_the_redacted_copy_by_its_keyed_digest",)),
    Mutant("redaction lists shown verbatim in metadata", "ft_pipeline/core/data/redaction/__init__.py",
           'data["allow_list"], data["deny_list"] = list_view(config.allow_list), list_view(config.deny_list)', 'pass',
           (T + "defs/test_field_canaries.py",)),
    Mutant("the task definition shown with its lists", "ft_pipeline/defs/task.py",
           '{loaded.shown_yaml()}', '{loaded.to_yaml()}',
           (T + "defs/test_field_canaries.py",)),
    Mutant("knowledge reaches prompts unredacted", "ft_pipeline/core/release/retrieval.py",
           'texts = redact_documents([c.text for c in chunks], config)', 'texts = [c.text for c in chunks]',
           (T + "core/data/test_fields.py::test_knowledge_documents_are_redacted_before_they_reach_a_prompt",)),
    Mutant("memorization gate judges the point estimate, not the interval's upper end",
           "ft_pipeline/core/release/memorization_gate.py",
           'leaky_tpr, leaky_exposure = worst["tpr_high"] > bound, exposure > config.max_exposure',
           'leaky_tpr, leaky_exposure = worst["tpr_at_1pct_fpr"] > bound, exposure > config.max_exposure',
           (T + "core/release/test_memorization_gate.py::test_the_gate_judges_the_upper_bound_and_the_exposure",)),
    Mutant("memorization gate ignores the canaries' exposure", "ft_pipeline/core/release/memorization_gate.py",
           'leaky_tpr, leaky_exposure = worst["tpr_high"] > bound, exposure > config.max_exposure',
           'leaky_tpr, leaky_exposure = worst["tpr_high"] > bound, False',
           (T + "core/release/test_memorization_gate.py::test_the_gate_judges_the_upper_bound_and_the_exposure",)),
    Mutant("memorization gate left out of the release gates", "ft_pipeline/core/release/gates.py",
           "                 _memorization_gate(evidence.memorization, config)]",
           "                 ]",
           (T + "core/release/test_memorization_gate.py::test_no_canaries_is_not_run_and_fails_only_when_required",)),
    Mutant("canaries planted once whatever their repetitions", "ft_pipeline/core/data/canaries.py",
           'for _ in range(row["repetitions"]):', 'for _ in range(min(row["repetitions"], 1)):',
           (T + "core/release/test_memorization_gate.py::test_the_trainer_adds_planted_canaries_to_the_training_split",
            T + "core/release/test_memorization_gate.py::test_the_gate_fails_a_run_that_memorized_its_canaries")),
    Mutant("evidence verify ignores the run log's hash chain", "ft_pipeline/core/release/evidence.py",
           "        if _sha(line) != expected:", "        if False:",
           (T + "cli/test_evidence_cli.py::test_an_edited_run_log_line_is_found_by_its_number",)),
    Mutant("evidence zip entries in build order", "ft_pipeline/core/release/evidence.py",
           "            for rel in sorted(files):", "            for rel in files:",
           (T + "cli/test_evidence_cli.py::test_the_bundle_validates_and_fills_every_annex_iv_section",)),
    Mutant("memorization gate ignores an attack that disproves the claimed epsilon",
           "ft_pipeline/core/release/memorization_gate.py",
           'if audit and audit["epsilon_lower_bound"] > audit["claimed_epsilon"]:', "if False:",
           (T + "core/release/test_memorization_gate.py::test_an_attack_proving_more_than_the_claimed_epsilon_flags_a_dp_bug",)),
    Mutant("the online gate passes on a point estimate", "ft_pipeline/core/serving/online_gate.py",
           "    if bad_end <= tolerance:", "    if worse <= tolerance:",
           (T + "core/serving/test_online_gate.py::test_a_rise_within_tolerance_by_point_estimate_but_not_ruled_out_fails",)),
    Mutant("the online gate passes on too few requests", "ft_pipeline/core/serving/online_gate.py",
           'enough = GateVerdict("enough_requests", n >= config.min_requests,', 'enough = GateVerdict("enough_requests", True,',
           (T + "core/serving/test_online_gate.py::test_equal_versions_pass_once_there_are_enough_requests",)),
    Mutant("a rollout switches to a candidate that failed its gate", "ft_pipeline/core/serving/rollout.py",
           "    elif not failed:\n        registry.set_current", "    elif True:\n        registry.set_current",
           (T + "core/serving/test_rollout.py::test_a_worse_canary_is_rolled_back_and_an_equal_one_becomes_current",)),
    Mutant("the canary ignores its share", "ft_pipeline/core/serving/rollout.py",
           "< share * 2 ** 64", "< 0.5 * 2 ** 64",
           (T + "core/serving/test_rollout.py::test_the_canary_split_is_stable_and_near_its_share",)),
    Mutant("drift is never past its thresholds", "ft_pipeline/core/serving/drift.py",
           "result[name] is not None and result[name] > limit]", "result[name] is not None and result[name] > 1]",
           (T + "defs/test_drift.py::test_drifted_traffic_fails_the_check_and_the_sensor_requests_one_retrain",)),
    Mutant("the pools have no limit", "dagster.yaml", "    default_limit: 1\n", "",
           (T + "attack/test_pools.py::test_two_runs_in_the_training_pool_do_not_overlap",)),
    Mutant("training is in no pool", "ft_pipeline/defs/training/assets.py", ", pool=TRAINING_POOL)", ")",
           (T + "attack/test_pools.py::test_the_real_training_and_promotion_steps_are_in_the_pools",)),
    Mutant("the stale-run sweep frees a live run's pool slot", "ft_pipeline/defs/pools.py",
           "if not pids or any(process_alive(pid, born_by) for pid, born_by in pids):", "if not pids:",
           (T + "attack/test_pools.py::test_the_sweep_never_frees_a_live_run_or_another_hosts",)),
    Mutant("the stale-run sweep frees another host's runs", "ft_pipeline/defs/pools.py",
           "tags={HOST_TAG: host}))", "tags={}))",
           (T + "attack/test_pools.py::test_the_sweep_never_frees_a_live_run_or_another_hosts",)),
    Mutant("a killed run keeps its pool slot", "ft_pipeline/defs/pools.py",
           "        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)\n", "",
           (T + "attack/test_pools.py::test_a_killed_run_does_not_block_the_next_start",)),
    Mutant("a live rollout never reaches its gate", "ft_pipeline/core/serving/live.py",
           "                if n < self.config.min_requests:", "                if True:",
           (T + "e2e/test_live_rollout.py::test_a_worse_live_canary_is_rolled_back_by_itself",)),
    Mutant("the live canary never answers a client", "ft_pipeline/core/serving/live.py",
           "canary = self.outcome is None and self.canary(request_id or cid)", "canary = False",
           (T + "e2e/test_live_rollout.py::test_a_worse_live_canary_is_rolled_back_by_itself",)),
    Mutant("serve and rollback take a version its gate rolled back", "ft_pipeline/core/release/registry.py",
           "    if not force:\n        raise RegistryError(f\"refusing to {command}", "    if False:\n        raise RegistryError(f\"refusing to {command}",
           (T + "cli/test_rolled_back_cli.py::test_a_rolled_back_version_is_refused_in_one_line",)),
    Mutant("a forced use of a rolled-back version goes unrecorded", "ft_pipeline/core/release/registry.py",
           '    record_rollout(folder, {"event": "forced"', '    dict(folder=folder, x={"event": "forced"',
           (T + "cli/test_rolled_back_cli.py::test_forced_use_is_recorded_in_the_audit_trail",)),
    Mutant("feedback takes any label", "ft_pipeline/core/serving/app.py",
           "problem = answers.check_answer(state.task, body.label)", "problem = None",
           (T + "e2e/test_live_rollout.py::test_feedback_is_checked_against_the_task",)),
    Mutant("feedback requests a retrain whatever its threshold", "ft_pipeline/defs/serving/drift.py",
           "    if count < threshold:", "    if count < 1:",
           (T + "defs/test_drift.py::test_labelled_feedback_since_the_last_training_requests_one_retrain",)),
    Mutant("a stepwise canary switches after its first step", "ft_pipeline/core/serving/rollout.py",
           "advanced = not failed and now == incumbent and stage < len(shares) - 1", "advanced = False",
           (T + "core/serving/test_rollout_steps.py::test_a_worse_candidate_stops_at_the_first_step_and_an_equal_one_moves_share_by_share",)),
    Mutant("a restarted server forgets the live rollout's pairs", "ft_pipeline/core/serving/live.py",
           "pairs, self.labels = live_evidence.load(self.evidence, self.started_at, self.stage)", "pairs, self.labels = [], {}",
           (T + "e2e/test_live_rollout_restart.py::test_a_live_stepwise_canary_resumes_after_a_restart_with_the_pairs_it_had",)),
    Mutant("a restarted server starts the canary's steps over", "ft_pipeline/core/serving/live.py",
           'sum(e.get("event") == "step" for e in since)', "0",
           (T + "cli/test_rolled_back_cli.py::test_a_held_or_live_started_version_is_in_rollout_and_a_decided_one_is_not",)),
    Mutant("live rollout steps shown again on every tick", "ft_pipeline/defs/serving/rollout.py",
           '            seen[f"{name}/{version}"] = len(steps)', '            seen[f"{name}/{version}"] = 0',
           (T + "defs/test_rollout_asset.py::test_the_steps_of_a_live_rollout_show_on_the_rollout_asset",)),
    Mutant("a source named after a customer keeps its name as partition key", "ft_pipeline/core/data/source_names.py",
           "    if not holds_pii(location, config):\n        return location", "    return location",
           (T + "core/data/test_source_names.py::test_a_name_holding_pii_gets_an_alias_that_resolves_in_the_raw_zone",)),
    Mutant("the files an ingest read go to the stored value by their real names", "ft_pipeline/defs/data/assets.py",
           "    summary[\"files\"] = [safe_name(name) for name in summary[\"files\"]]\n", "",
           (T + "defs/test_field_canaries.py::test_no_canary_in_any_file_outside_the_raw_zone",)),
    Mutant("stored values unpickled as they come", "ft_pipeline/core/erasure/stored_values.py",
           "return _DataOnly(io.BytesIO(data)).load()", "return pickle.loads(data)",
           (T + "core/erasure/test_stored_values.py",
            T + "cli/test_erasure_dagster_cli.py::test_a_planted_pickle_is_refused_by_forget_and_never_run")),
    Mutant("forget leaves the SQLite index's copies of asset events", "ft_pipeline/defs/release/erasure_dagster.py",
           "        yield from ((s, False) for s in shards)\n    yield None, True",
           "        yield from ((s, False) for s in shards)\n        return\n    yield None, True",
           (T + "cli/test_erasure_dagster_cli.py::test_forget_rewrites_dagster_records_and_their_bytes_are_gone",)),
    Mutant("forget leaves compute logs as they were", "ft_pipeline/defs/release/erasure_dagster.py",
           "if name.endswith(LOG_SUFFIXES) and scrub_text_file(path, mentions, write=True):",
           "if name.endswith(LOG_SUFFIXES) and scrub_text_file(path, mentions, write=False):",
           (T + "cli/test_erasure_dagster_cli.py::test_forget_rewrites_dagster_records_and_their_bytes_are_gone",)),
    Mutant("long texts analyzed in windows that do not overlap", "ft_pipeline/core/data/redaction/spans.py",
           "OVERLAP_CHARS = 1_000", "OVERLAP_CHARS = 0",
           (T + "attack/test_long_records.py::test_an_entity_across_a_window_cut_is_redacted",)),
    Mutant("spaCy batches unbounded in characters", "ft_pipeline/core/data/redaction/spans.py",
           "if group and (len(group) == batch_size or size + len(text) > BATCH_CHARS):",
           "if group and len(group) == batch_size:",
           (T + "attack/test_long_records.py::test_spacy_sees_only_bounded_windows_and_batches",)),
    Mutant("a launched run's dead step process is not waited for", "ft_pipeline/defs/pools.py",
           "if not pids or any(process_alive(pid, born_by) for pid, born_by in pids):",
           "if not pids or process_alive(*pids[0]):",
           (T + "attack/test_launched_run_pools.py",)),
    Mutant("a resumed trainer starts its data over", "ft_pipeline/core/training/train.py",
           "    result = trainer.train(resume_from_checkpoint=resume)",
           "    trainer.args.ignore_data_skip = True\n    result = trainer.train(resume_from_checkpoint=resume)",
           (T + "attack/test_kill_trainer.py",)),
    Mutant("two runs in one home at once", "ft_pipeline/runner.py",
           "        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the process ends, even by SIGKILL",
           "        pass",
           (T + "attack/test_concurrent_runs.py",)),
    Mutant("launched runs untagged with their worker's host", "ft_pipeline/defs/pools.py",
           "        self._instance.add_run_tags(run.run_id, {HOST_TAG: host})\n", "",
           (T + "attack/test_launched_run_pools.py",)),
    Mutant("the Ray engine drops the record that crosses the in-memory limit", "ft_pipeline/core/scale/ray_data.py",
           "            return head, False", "            return head[:-1], False",
           (T + "core/scale/test_ray_data.py::test_head_then_rest_is_every_line_in_order",)),
    Mutant("embedded Ray joins a Ray found running on the machine", "ft_pipeline/core/scale/engines.py",
           'ray.init(address="local", include_dashboard=False', 'ray.init(include_dashboard=False',
           (T + "e2e/test_ray_engine.py::test_embedded_ray_never_joins_a_ray_found_on_the_machine",)),
    Mutant("a RAY_ADDRESS where no Ray answers is a traceback", "ft_pipeline/core/scale/engines.py",
           "        except ConnectionError:  # a wrong address", "        except ImportError:  # a wrong address",
           (T + "e2e/test_ray_engine.py::test_cli_ray_engine_names_a_cluster_that_does_not_answer",)),
]


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored), .venv linked in."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    (dest / ".venv").symlink_to(REPO / ".venv")


def run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[bool, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "GX_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests], cwd=tree,
                          env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode == 0, (lines[-1] if lines else done.stderr.strip()[-200:])


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(word in m.name for word in argv)]
    caught = 0
    with tempfile.TemporaryDirectory(prefix="ft-mutants-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        for mutant in chosen:
            target = tree / mutant.file
            original = target.read_text()
            assert original.count(mutant.old) == 1, f"{mutant.name}: the text to break is not in {mutant.file} once"
            start = time.time()
            passed, summary = run_tests(tree, mutant.tests)
            if not passed:
                print(f"BASELINE FAILS  {mutant.name}: {summary}", flush=True)
                return 1
            target.write_text(original.replace(mutant.old, mutant.new))
            try:
                survived, broken = run_tests(tree, mutant.tests)
            finally:
                target.write_text(original)
            caught += not survived
            print(f"{'SURVIVED' if survived else 'caught  '}  {mutant.name} ({time.time() - start:.0f} s): "
                  f"baseline {summary} | broken {broken}", flush=True)
    print(f"{caught}/{len(chosen)} mutants caught")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
