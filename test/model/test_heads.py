"""Action heads through the whole policy: shapes, gradients, sequence layout, padding, decoding, overfitting."""

import numpy as np
import pytest
import torch

from maps_vla.model.heads.base import IGNORE_INDEX
from maps_vla.model.heads.discrete_bins import BinActionTokenizer
from maps_vla.policy import ACTIONS, OBS_IMAGE_PREFIX, OBS_STATE, TASK

HEADS = ['l1_regression', 'action_expert', 'discrete_bins', 'string']


def _head_kwargs(head):
    return {'max_new_tokens': 12} if head == 'string' else {}


@pytest.mark.parametrize('head', HEADS)
@pytest.mark.parametrize('views', [1, 2])
@pytest.mark.parametrize('proprio', [0, 8])
def test_forward_backward_and_predict_shapes(head, views, proprio, make_tiny, make_batch, build_policy):
    cfg = make_tiny(head, views=views, proprio=proprio, **_head_kwargs(head))
    policy = build_policy(cfg).train()
    batch = make_batch(cfg)
    out = policy(batch)
    assert out['loss'].ndim == 0 and torch.isfinite(out['loss'])
    out['loss'].backward()
    grads = {n: p.grad for n, p in policy.named_parameters()}
    for name in ('vision_backbone.featurizer.encoder.layer.0.attention.q_proj.weight',
                 'vision_backbone.fused_featurizer.encoder.layers.0.self_attn.q_proj.weight',
                 'projector.fc1.weight', 'language_model.model.layers.0.self_attn.q_proj.weight'):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    assert all(g is not None for n, g in grads.items() if n.startswith(('action_head.', 'proprio_projector.')))
    assert (policy.proprio_projector is not None) == bool(proprio)
    actions = policy.predict_action_chunk(batch)
    assert actions.shape == (2, cfg.chunk_size, cfg.action_dim) and actions.dtype == torch.float32


@pytest.mark.parametrize('head', HEADS)
def test_results_do_not_depend_on_batch_padding(head, make_tiny, make_batch, build_policy):
    cfg = make_tiny(head, **_head_kwargs(head))
    policy = build_policy(cfg).eval()
    batch = make_batch(cfg)  # prompts of different lengths -> the shorter one is padded
    together = policy.predict_action_chunk(batch, normalized=True)
    for i in range(2):
        alone = policy.predict_action_chunk({k: v[i:i + 1] for k, v in batch.items()}, normalized=True)
        torch.testing.assert_close(together[i:i + 1], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('head', HEADS)
def test_loss_ignores_padded_chunk_steps(head, make_tiny, make_batch, build_policy):
    cfg = make_tiny(head)
    policy = build_policy(cfg).eval()
    batch = make_batch(cfg)
    changed = dict(batch, actions=batch['actions'].clone())
    changed['actions'][~batch['action_mask']] = 0.77
    with torch.no_grad():
        assert policy(batch)['loss'] == policy(changed)['loss']
        changed['actions'][0, 0, 0] = -0.9
        assert policy(batch)['loss'] != policy(changed)['loss']


@pytest.mark.parametrize('attention', ['bidirectional', 'causal'])
def test_l1_sequence_layout_and_shifted_readout(attention, make_tiny, make_batch, build_policy):
    """Rebuild OFT's sequence by hand: [BOS][patches][proprio][prompt][K·A zero embeddings][</s>]."""
    cfg = make_tiny('l1_regression', attention=attention)
    policy = build_policy(cfg).eval()
    batch = {k: v[:1] for k, v in make_batch(cfg).items()}
    with torch.no_grad():
        predicted = policy.predict_action_chunk(batch, normalized=True)
        pixels = policy.processor.preprocess_images(batch['images'])
        prefix = policy.encode_observation(pixels, batch['state'])
        ids = policy.tokenizer(policy.processor.build_prompt(batch['task'][0])).input_ids
        embed = policy.language_model.get_input_embeddings()
        n = cfg.chunk_size * cfg.action_dim
        eos = embed(torch.tensor([[policy.tokenizer.eos_token_id]]))
        embeds = torch.cat([embed(torch.tensor([ids[:1]])), prefix, embed(torch.tensor([ids[1:]])),
                            torch.zeros(1, n, cfg.llm.hidden_size), eos], 1)
        length = embeds.shape[1]
        mask = torch.zeros(1, 1, length, length) if attention == 'bidirectional' else None
        hidden = policy.language_model.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        start = prefix.shape[1] + len(ids) - 1  # the last prompt token
        manual = policy.action_head.model(hidden[:, start:start + n].reshape(1, cfg.chunk_size, -1))
    assert prefix.shape[1] == 2 * 4 + 1
    torch.testing.assert_close(predicted, manual, atol=1e-5, rtol=1e-5)


def test_bidirectional_attention_changes_the_result(make_tiny, make_batch, build_policy):
    batch = make_batch(make_tiny())
    bi = build_policy(make_tiny(attention='bidirectional')).eval().predict_action_chunk(batch)
    causal = build_policy(make_tiny(attention='causal')).eval().predict_action_chunk(batch)
    assert not torch.allclose(bi, causal)


def test_bin_tokenizer_matches_openvla_numpy_reference():
    vocab_end = 32000
    tokens = BinActionTokenizer(vocab_end)
    bins = np.linspace(-1, 1, 256)
    centers = (bins[:-1] + bins[1:]) / 2
    values = np.concatenate([np.random.default_rng(0).uniform(-1.2, 1.2, 500), bins, [-1.0, 1.0, 0.0]])
    reference_ids = vocab_end - np.digitize(np.clip(values, -1, 1), bins)
    ids = tokens.encode(torch.tensor(values))
    assert ids.tolist() == reference_ids.tolist()
    reference_values = centers[np.clip(vocab_end - reference_ids - 1, 0, 254)]
    np.testing.assert_allclose(tokens.decode(ids).numpy(), reference_values.astype(np.float32))
    assert ids.min() >= 31744 and ids.max() <= 31999
    inside = np.abs(values) <= 1
    assert np.abs(tokens.decode(ids).numpy()[inside] - values[inside]).max() <= 2 / 255 + 1e-6


def test_discrete_decoding_stays_in_the_action_vocabulary(make_tiny, make_batch, build_policy):
    cfg = make_tiny('discrete_bins')
    policy = build_policy(cfg).eval()
    actions = policy.predict_action_chunk(make_batch(cfg), normalized=True)
    centers = policy.action_head.tokens.centers.float()
    assert torch.isin(actions, centers).all()
    assert policy.action_head.tokens.vocab_end == len(policy.tokenizer)  # the char tokenizer's <|extra_i|> ids


def test_vl_cotraining_targets_only_the_answer(make_tiny, build_policy):
    cfg = make_tiny()
    policy = build_policy(cfg).train()
    g = torch.Generator().manual_seed(0)
    batch = {'images': torch.randint(0, 256, (2, 1, 3, 28, 28), generator=g, dtype=torch.uint8),
             'question': ['what is left of the cup?', 'how many blocks?'], 'answer': ['a red bowl', '3']}
    out = policy(batch)
    out['loss'].backward()
    assert torch.isfinite(out['loss']) and policy.projector.fc1.weight.grad is not None
    assert all(p.grad is None for p in policy.action_head.parameters())
    assert all(p.grad is None for p in policy.proprio_projector.parameters())  # no state in VL batches
    with torch.no_grad():
        prefix = policy.encode_observation(policy.processor.preprocess_images(batch['images']))
        ids, mask = policy.processor.tokenize([cfg.vl_prompt_template.format(question=q) for q in batch['question']])
        answers = [policy.tokenizer(' ' + a, add_special_tokens=False).input_ids + [2] for a in batch['answer']]
        suffix = torch.zeros(2, max(map(len, answers)), dtype=torch.long)
        suffix_mask = torch.zeros_like(suffix)
        for i, a in enumerate(answers):
            suffix[i, :len(a)], suffix_mask[i, :len(a)] = torch.tensor(a), 1
        seq = policy.build_sequence(prefix, ids, mask, suffix, suffix_mask,
                                    suffix.masked_fill(suffix_mask == 0, IGNORE_INDEX))
    for row, answer in zip(seq.labels, answers):
        assert row[row != IGNORE_INDEX].tolist() == answer


def test_answer_logprobs_score_each_row_alone(make_tiny, build_policy):
    policy = build_policy(make_tiny()).eval()
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (3, 1, 3, 28, 28), generator=g, dtype=torch.uint8)
    questions, answers = ['where is the dog?', 'what is it?', 'where?'], ['far left', 'a cat face', 'right']
    scores = policy.answer_logprobs({'images': images, 'question': questions, 'answer': answers})
    for i in range(3):  # padding and batch mates change nothing; the score is -(mean CE) x answer tokens
        one = {'images': images[i:i + 1], 'question': questions[i:i + 1], 'answer': answers[i:i + 1]}
        n_tokens = len(policy.tokenizer(' ' + answers[i], add_special_tokens=False).input_ids) + 1
        with torch.no_grad():
            ce = policy.vl_loss(one)['loss']
        torch.testing.assert_close(scores[i], -ce * n_tokens, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(policy.answer_logprobs(one)[0], scores[i], rtol=1e-4, atol=1e-4)
    assert bool((scores < 0).all())


def test_infer_numpy_in_numpy_out(make_tiny, build_policy):
    cfg = make_tiny()
    policy = build_policy(cfg).eval()
    rng = np.random.default_rng(0)
    obs = {OBS_IMAGE_PREFIX + c: rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for c in cfg.cameras}
    obs[OBS_STATE] = rng.uniform(-1, 1, 8).astype(np.float32)
    obs[TASK] = 'Put the bowl on the plate'
    out = policy.infer(obs)
    assert out[ACTIONS].shape == (8, 7) and out[ACTIONS].dtype == np.float32
    views = np.stack([obs[OBS_IMAGE_PREFIX + c] for c in cfg.cameras])
    batch = {'images': torch.from_numpy(views).permute(0, 3, 1, 2)[None],
             'task': [obs[TASK]], 'state': policy.processor.normalize_state(torch.from_numpy(obs[OBS_STATE]))[None]}
    normalized = policy.predict_action_chunk(batch, normalized=True)[0]
    np.testing.assert_allclose(out[ACTIONS], policy.processor.unnormalize_actions(normalized).numpy(), rtol=1e-6)
    assert not np.allclose(out[ACTIONS], normalized.numpy())  # stats were applied
    del obs[OBS_IMAGE_PREFIX + 'wrist']
    with pytest.raises(KeyError, match='observation.images.wrist'):
        policy.infer(obs)


def test_prompt_ids_can_replace_strings(make_tiny, make_batch, build_policy):
    cfg = make_tiny()
    policy = build_policy(cfg).eval()
    batch = make_batch(cfg)
    ids, mask = policy.processor.tokenize([policy.processor.build_prompt(t) for t in batch['task']])
    with_ids = {k: v for k, v in batch.items() if k != 'task'} | {'input_ids': ids, 'attention_mask': mask}
    with torch.no_grad():
        assert policy(batch)['loss'] == policy(with_ids)['loss']


@pytest.mark.slow
def test_l1_head_overfits_a_few_samples(make_tiny, make_batch, build_policy):
    cfg = make_tiny()
    policy = build_policy(cfg).train()
    batch = make_batch(cfg, batch_size=4, seed=3)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(100):
        loss = policy(batch)['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])


def test_action_expert_reads_images_instruction_and_state(make_tiny, make_batch, build_policy):
    """Each input reaches the actions: the images (directly and through the LLM), the instruction (only through the
    LLM's hidden states) and the proprio token."""
    cfg = make_tiny('action_expert', expert_width=32, expert_heads=2)
    policy = build_policy(cfg).eval()
    batch = {k: v[:1] for k, v in make_batch(cfg).items()}
    base = policy.predict_action_chunk(batch, normalized=True)
    changed = {
        'images': dict(batch, images=255 - batch['images']),
        'task': dict(batch, task=['stack blocks']),
        'state': dict(batch, state=-batch['state']),
    }
    for name, other in changed.items():
        delta = (policy.predict_action_chunk(other, normalized=True) - base).abs().max()
        assert delta > 1e-4, name
    queries = policy.action_head.queries
    assert queries.shape == (cfg.chunk_size, 32)
    assert not torch.allclose(base[0, 0], base[0, 1])  # distinct learned queries: chunk steps differ from the start


@pytest.mark.parametrize('attention', ['causal', 'bidirectional'])
def test_action_expert_attention_decides_whether_patch_states_see_the_words(attention, make_tiny, make_batch,
                                                                             build_policy):
    """Causal: the LLM's patch states are the same whatever the instruction (only the prompt's own states carry it);
    bidirectional (π0's prefix): they change with it, so the expert can read where the named object is."""
    cfg = make_tiny('action_expert', expert_width=32, expert_heads=2, expert_attention=attention)
    policy = build_policy(cfg).eval()
    batch = {k: v[:1] for k, v in make_batch(cfg).items()}
    patches = []
    for task in (['pick up the red cube'], ['stack blocks']):
        inputs = policy.prepare_robot_inputs(dict(batch, task=task), with_targets=False)
        sequence = policy.build_sequence(inputs.prefix, inputs.prompt_ids, inputs.prompt_mask)
        hidden = policy.run_llm(sequence, bidirectional=policy.action_head.bidirectional)
        patches.append(hidden[:, 1:1 + inputs.prefix.shape[1]])  # token 0, then the prefix
    moved = (patches[0] - patches[1]).abs().max().item()
    assert (moved > 1e-4) == (attention == 'bidirectional'), moved


def test_action_expert_without_the_prefix_reads_the_llm_states_only(make_tiny, make_batch, build_policy):
    """expert_context 'llm': the context is the LLM's states alone, so the raw patch tokens (the path around the
    LLM) no longer reach the expert; the loss still trains every part, and the weights load either way."""
    both = build_policy(make_tiny('action_expert', expert_width=32, expert_heads=2)).eval()
    cfg = make_tiny('action_expert', expert_width=32, expert_heads=2, expert_context='llm')
    llm_only = build_policy(cfg).eval()
    llm_only.load_state_dict(both.state_dict())  # the same parameters: a checkpoint can switch context
    batch = make_batch(cfg)
    seen = []
    hook = llm_only.action_head.context_proj.register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    inputs = llm_only.prepare_robot_inputs(batch, with_targets=False)
    sequence = llm_only.build_sequence(inputs.prefix, inputs.prompt_ids, inputs.prompt_mask)
    out = llm_only.predict_action_chunk(batch, normalized=True)
    hook.remove()
    assert seen[0][1] == sequence.attention_mask.shape[1]  # no prefix tokens appended after the LLM's states
    assert not torch.allclose(out, both.predict_action_chunk(batch, normalized=True))
    llm_only.train()
    llm_only.action_head.loss(llm_only, llm_only.prepare_robot_inputs(batch, with_targets=True))['loss'].backward()
    assert llm_only.action_head.source_embedding.grad[1].abs().sum() == 0  # the prefix's source row is unused
    assert llm_only.action_head.queries.grad.abs().sum() > 0


def test_action_expert_config_is_validated():
    from maps_vla.model.vla.configuration_vla import ActionHeadConfig
    with pytest.raises(ValueError, match='expert_context must be one of'):
        ActionHeadConfig(type='action_expert', expert_context='patches')
    with pytest.raises(ValueError, match='expert_attention must be one of'):
        ActionHeadConfig(type='action_expert', expert_attention='sideways')
    with pytest.raises(ValueError, match='expert_width 30 is not divisible by expert_heads 4'):
        ActionHeadConfig(type='action_expert', expert_width=30)
    with pytest.raises(ValueError, match='expert_layers must be > 0'):
        ActionHeadConfig(type='action_expert', expert_layers=0)


def test_regression_losses_l1_and_l2_over_valid_steps():
    from maps_vla.model.heads.base import RobotInputs, masked_regression_loss

    predicted = torch.zeros(1, 2, 2)
    actions = torch.tensor([[[1.0, -3.0], [5.0, 5.0]]])
    inputs = RobotInputs(prefix=None, prompt_ids=None, prompt_mask=None, actions=actions,
                         action_mask=torch.tensor([[True, False]]))  # the second step is padding
    l1, l2 = masked_regression_loss(predicted, inputs, 'l1'), masked_regression_loss(predicted, inputs, 'l2')
    assert l1['loss'].item() == pytest.approx(2.0) and l2['loss'].item() == pytest.approx(5.0)
    assert l2['l1'].item() == pytest.approx(2.0)  # the L1 metric is reported either way
    with pytest.raises(ValueError, match='regression loss'):
        masked_regression_loss(predicted, inputs, 'huber')


@pytest.mark.parametrize('head', ['l1_regression', 'action_expert'])
def test_heads_train_with_the_configured_regression_loss(head, make_tiny, make_batch, build_policy):
    import dataclasses

    cfg = make_tiny(head, **_head_kwargs(head))
    batch = make_batch(cfg, batch_size=2, seed=1)
    losses = {}
    for kind in ('l1', 'l2'):
        torch.manual_seed(0)
        variant = cfg.replace(head=dataclasses.replace(cfg.head, regression_loss=kind))
        out = build_policy(variant).train()(batch)
        losses[kind] = (out['loss'].item(), out['l1'].item())
    assert losses['l1'][1] == pytest.approx(losses['l2'][1], rel=1e-5)  # the same weights, the same predictions
    assert losses['l1'][0] == pytest.approx(losses['l1'][1]) and losses['l2'][0] != pytest.approx(losses['l2'][1])
