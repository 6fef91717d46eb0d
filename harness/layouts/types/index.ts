// Every model type the harness knows, one file each: this list is the registry's index.
// Adding a type = one file in this folder and one line here.
import type { ModelEntry } from '../model-type.js';
import { afmoe } from './afmoe.js';
import { cohere2_moe } from './cohere2_moe.js';
import { dbrx } from './dbrx.js';
import { deepseek_v2 } from './deepseek_v2.js';
import { deepseek_v3 } from './deepseek_v3.js';
import { deepseek_v32 } from './deepseek_v32.js';
import { deepseek_v4 } from './deepseek_v4.js';
import { dots1 } from './dots1.js';
import { doge } from './doge.js';
import { ernie4_5_moe } from './ernie4_5_moe.js';
import { exaone_moe } from './exaone_moe.js';
import { flex_olmo } from './flex_olmo.js';
import { glm4_moe } from './glm4_moe.js';
import { glm4_moe_lite } from './glm4_moe_lite.js';
import { glm4v_moe } from './glm4v_moe.js';
import { gemma4_text } from './gemma4_text.js';
import { glm5_next } from './glm5_next.js';
import { glm_moe_dsa } from './glm_moe_dsa.js';
import { gpt_oss } from './gpt_oss.js';
import { granitemoe } from './granitemoe.js';
import { granitemoehybrid } from './granitemoehybrid.js';
import { granitemoeshared } from './granitemoeshared.js';
import { hunyuan_v1_moe } from './hunyuan_v1_moe.js';
import { hy_v3 } from './hy_v3.js';
import { inkling_text } from './inkling_text.js';
import { jamba } from './jamba.js';
import { jetmoe } from './jetmoe.js';
import { kimi_linear } from './kimi_linear.js';
import { laguna } from './laguna.js';
import { lfm2_moe } from './lfm2_moe.js';
import { llama4_text } from './llama4_text.js';
import { longcat_flash } from './longcat_flash.js';
import { mellum } from './mellum.js';
import { mimo_v2_flash } from './mimo_v2_flash.js';
import { minimax_m2 } from './minimax_m2.js';
import { minimax_m3_vl } from './minimax_m3_vl.js';
import { mistral4 } from './mistral4.js';
import { minimax, mixtral } from './mixtral.js';
import { nemotron_h } from './nemotron_h.js';
import { olmoe } from './olmoe.js';
import { openai_privacy_filter } from './openai_privacy_filter.js';
import { phimoe } from './phimoe.js';
import { qwen2_moe } from './qwen2_moe.js';
import { qwen3_5_moe_text } from './qwen3_5_moe_text.js';
import { qwen3_moe } from './qwen3_moe.js';
import { qwen3_next } from './qwen3_next.js';
import { qwen3_vl_moe } from './qwen3_vl_moe.js';
import { solar_open } from './solar_open.js';
import { step3p7 } from './step3p7.js';
import { qwen3_omni_moe } from './qwen3_omni_moe.js';
import { qwen4_exp, qwen4_exp_text } from './qwen4_exp_text.js';
import { deepseek_ocr2 } from './deepseek_ocr2.js';
import { granitemoe_swa } from './granitemoe_swa.js';
import { aria, aria_text } from './aria_text.js';
import { axk1 } from './axk1.js';
import { axk2 } from './axk2.js';
import { hy_v4 } from './hy_v4.js';
import { llama4 } from './llama4.js';
import { zaya } from './zaya.js';

/** Every model type by its model_type name (each key is its entry's modelType: registry.test.ts checks it). */
export const ENTRIES_BY_TYPE = {
  mixtral,
  minimax,
  phimoe,
  lfm2_moe,
  qwen2_moe,
  qwen3_next,
  qwen3_moe,
  olmoe,
  flex_olmo,
  jamba,
  deepseek_v2,
  deepseek_v3,
  glm4_moe,
  dots1,
  ernie4_5_moe,
  hunyuan_v1_moe,
  gpt_oss,
  llama4_text,
  granitemoe,
  dbrx,
  // added after the first 20, from transformers 5.17 (spec/layouts.md)
  minimax_m2,
  glm4_moe_lite,
  deepseek_v32,
  glm_moe_dsa,
  exaone_moe,
  solar_open,
  mimo_v2_flash,
  afmoe,
  hy_v3,
  granitemoeshared,
  granitemoehybrid,
  mellum,
  nemotron_h,
  mistral4,
  cohere2_moe,
  laguna,
  qwen3_5_moe_text,
  qwen3_vl_moe,
  jetmoe,
  longcat_flash,
  kimi_linear,
  glm4v_moe,
  glm5_next,
  // issue 14, new semantics (s2-i14-b)
  step3p7,
  minimax_m3_vl,
  gemma4_text,
  inkling_text,
  // issue 14, batch a (s2-i14-a)
  qwen3_omni_moe,
  qwen4_exp_text,
  qwen4_exp,
  deepseek_ocr2,
  granitemoe_swa,
  aria_text,
  aria,
  axk1,
  axk2,
  hy_v4,
  llama4,
  // s2-i14-c
  deepseek_v4,
  openai_privacy_filter,
  zaya,
  doge,
} satisfies Record<string, ModelEntry>;

/** A model_type the registry describes: a literal union, so that a typo in a capability fails to compile. */
export type ModelType = keyof typeof ENTRIES_BY_TYPE;

export const ENTRIES: readonly ModelEntry[] = Object.values(ENTRIES_BY_TYPE);
