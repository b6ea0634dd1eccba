"""Architecture families of synthetic models: what their config.json, tokenizer and weights are.

A family fixes the library, the model_type, the heads (architecture class and pipeline tag) and
the config keys, which differ between families on the real Hub too (GPT-2 says `n_embd` where
Llama says `hidden_size`). `config_json` renders the file; `normalized_config` gives the same
numbers under the common names a crawler records, as ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TRANSFORMERS_VERSION = "4.46.2"


@dataclass(frozen=True, slots=True)
class Family:
    """One architecture family and how repos of it are laid out."""

    name: str
    library: str | None
    model_type: str | None
    heads: tuple[tuple[str, str], ...]  # (architecture class, pipeline tag)
    variants: tuple[dict[str, int], ...]  # config numbers under the family's own key names
    tokenizer: str  # wordpiece | bpe | sentencepiece | none
    layout: str  # transformers | sentence-transformers | diffusers | gguf | peft | timm
    weight: float  # how common the family is
    text: bool = True  # whether cards declare languages
    name_parts: tuple[str, ...] = ()
    # family key -> common key, for normalized_config
    aliases: dict[str, str] = field(default_factory=dict)


_BERT_HEADS = (
    ("BertForMaskedLM", "fill-mask"),
    ("BertForSequenceClassification", "text-classification"),
    ("BertForTokenClassification", "token-classification"),
    ("BertForQuestionAnswering", "question-answering"),
)
_GPT2_ALIASES = {
    "n_embd": "hidden_size",
    "n_head": "num_attention_heads",
    "n_layer": "num_hidden_layers",
    "n_positions": "max_position_embeddings",
}
_T5_ALIASES = {
    "d_model": "hidden_size",
    "num_heads": "num_attention_heads",
    "num_layers": "num_hidden_layers",
    "d_ff": "intermediate_size",
}
_WHISPER_ALIASES = {
    "d_model": "hidden_size",
    "encoder_attention_heads": "num_attention_heads",
    "encoder_layers": "num_hidden_layers",
    "max_source_positions": "max_position_embeddings",
}

FAMILIES: tuple[Family, ...] = (
    Family(
        "bert",
        "transformers",
        "bert",
        _BERT_HEADS,
        (
            dict(
                hidden_size=768,
                num_attention_heads=12,
                num_hidden_layers=12,
                intermediate_size=3072,
                vocab_size=30522,
                max_position_embeddings=512,
            ),
            dict(
                hidden_size=1024,
                num_attention_heads=16,
                num_hidden_layers=24,
                intermediate_size=4096,
                vocab_size=30522,
                max_position_embeddings=512,
            ),
            dict(
                hidden_size=256,
                num_attention_heads=4,
                num_hidden_layers=4,
                intermediate_size=1024,
                vocab_size=30522,
                max_position_embeddings=512,
            ),
        ),
        "wordpiece",
        "transformers",
        0.16,
        name_parts=("bert-base", "bert-large", "bert-mini", "tinybert"),
    ),
    Family(
        "roberta",
        "transformers",
        "roberta",
        (
            ("RobertaForMaskedLM", "fill-mask"),
            ("RobertaForSequenceClassification", "text-classification"),
            ("RobertaForTokenClassification", "token-classification"),
        ),
        (
            dict(
                hidden_size=768,
                num_attention_heads=12,
                num_hidden_layers=12,
                intermediate_size=3072,
                vocab_size=50265,
                max_position_embeddings=514,
            ),
        ),
        "bpe",
        "transformers",
        0.07,
        name_parts=("roberta-base", "distilroberta"),
    ),
    Family(
        "gpt2",
        "transformers",
        "gpt2",
        (("GPT2LMHeadModel", "text-generation"),),
        (
            dict(n_embd=768, n_head=12, n_layer=12, n_positions=1024, vocab_size=50257),
            dict(n_embd=1024, n_head=16, n_layer=24, n_positions=1024, vocab_size=50257),
        ),
        "bpe",
        "transformers",
        0.06,
        name_parts=("gpt2", "distilgpt2", "gpt2-medium"),
        aliases=_GPT2_ALIASES,
    ),
    Family(
        "llama",
        "transformers",
        "llama",
        (("LlamaForCausalLM", "text-generation"),),
        (
            dict(
                hidden_size=2048,
                num_attention_heads=32,
                num_hidden_layers=16,
                num_key_value_heads=8,
                intermediate_size=8192,
                vocab_size=128256,
                max_position_embeddings=131072,
            ),
            dict(
                hidden_size=4096,
                num_attention_heads=32,
                num_hidden_layers=32,
                num_key_value_heads=8,
                intermediate_size=14336,
                vocab_size=128256,
                max_position_embeddings=131072,
            ),
        ),
        "bpe",
        "transformers",
        0.13,
        name_parts=("Llama-3.2-1B", "Llama-3.1-8B", "llama-mini"),
    ),
    Family(
        "mistral",
        "transformers",
        "mistral",
        (("MistralForCausalLM", "text-generation"),),
        (
            dict(
                hidden_size=4096,
                num_attention_heads=32,
                num_hidden_layers=32,
                num_key_value_heads=8,
                intermediate_size=14336,
                vocab_size=32000,
                max_position_embeddings=32768,
            ),
        ),
        "sentencepiece",
        "transformers",
        0.06,
        name_parts=("Mistral-7B", "mistral-small"),
    ),
    Family(
        "qwen2",
        "transformers",
        "qwen2",
        (("Qwen2ForCausalLM", "text-generation"),),
        (
            dict(
                hidden_size=896,
                num_attention_heads=14,
                num_hidden_layers=24,
                num_key_value_heads=2,
                intermediate_size=4864,
                vocab_size=151936,
                max_position_embeddings=32768,
            ),
            dict(
                hidden_size=3584,
                num_attention_heads=28,
                num_hidden_layers=28,
                num_key_value_heads=4,
                intermediate_size=18944,
                vocab_size=152064,
                max_position_embeddings=131072,
            ),
        ),
        "bpe",
        "transformers",
        0.07,
        name_parts=("Qwen2.5-0.5B", "Qwen2.5-7B"),
    ),
    Family(
        "t5",
        "transformers",
        "t5",
        (
            ("T5ForConditionalGeneration", "text2text-generation"),
            ("T5ForConditionalGeneration", "translation"),
            ("T5ForConditionalGeneration", "summarization"),
        ),
        (
            dict(d_model=512, num_heads=8, num_layers=6, d_ff=2048, vocab_size=32128),
            dict(d_model=768, num_heads=12, num_layers=12, d_ff=3072, vocab_size=32128),
        ),
        "sentencepiece",
        "transformers",
        0.05,
        name_parts=("t5-small", "t5-base", "flan-t5"),
        aliases=_T5_ALIASES,
    ),
    Family(
        "vit",
        "transformers",
        "vit",
        (("ViTForImageClassification", "image-classification"),),
        (
            dict(
                hidden_size=768,
                num_attention_heads=12,
                num_hidden_layers=12,
                intermediate_size=3072,
                image_size=224,
                patch_size=16,
            ),
        ),
        "none",
        "transformers",
        0.05,
        text=False,
        name_parts=("vit-base-patch16-224", "vit-small"),
    ),
    Family(
        "whisper",
        "transformers",
        "whisper",
        (("WhisperForConditionalGeneration", "automatic-speech-recognition"),),
        (
            dict(
                d_model=384,
                encoder_attention_heads=6,
                encoder_layers=4,
                decoder_layers=4,
                vocab_size=51865,
                max_source_positions=1500,
            ),
            dict(
                d_model=768,
                encoder_attention_heads=12,
                encoder_layers=12,
                decoder_layers=12,
                vocab_size=51865,
                max_source_positions=1500,
            ),
        ),
        "bpe",
        "transformers",
        0.04,
        name_parts=("whisper-tiny", "whisper-small"),
        aliases=_WHISPER_ALIASES,
    ),
    Family(
        "sentence-transformers",
        "sentence-transformers",
        "bert",
        (("BertModel", "sentence-similarity"), ("BertModel", "feature-extraction")),
        (
            dict(
                hidden_size=384,
                num_attention_heads=12,
                num_hidden_layers=6,
                intermediate_size=1536,
                vocab_size=30522,
                max_position_embeddings=512,
            ),
        ),
        "wordpiece",
        "sentence-transformers",
        0.07,
        name_parts=("all-MiniLM-L6", "paraphrase-mini", "embed-small"),
    ),
    Family(
        "diffusers",
        "diffusers",
        None,
        (("StableDiffusionPipeline", "text-to-image"),),
        (dict(sample_size=64, cross_attention_dim=768),),
        "bpe",
        "diffusers",
        0.06,
        text=False,
        name_parts=("stable-diffusion", "sd-turbo", "dreamlike"),
    ),
    Family(
        "gguf",
        None,
        None,
        (("llama", "text-generation"),),
        (dict(context_length=8192),),
        "none",
        "gguf",
        0.07,
        name_parts=("Llama-3.2-3B-Instruct", "Mistral-7B-Instruct", "Qwen2.5-7B-Instruct"),
    ),
    Family(
        "peft",
        "peft",
        None,
        (("LoraModel", "text-generation"),),
        (dict(r=16, lora_alpha=32),),
        "none",
        "peft",
        0.06,
        name_parts=("lora", "qlora", "adapter"),
    ),
    Family(
        "timm",
        "timm",
        None,
        (("resnet50", "image-classification"), ("convnext_tiny", "image-classification")),
        (dict(num_classes=1000, num_features=2048),),
        "none",
        "timm",
        0.05,
        text=False,
        name_parts=("resnet50", "convnext-tiny"),
    ),
)
FAMILY_BY_NAME = {family.name: family for family in FAMILIES}

# Labels of classification heads (config.json id2label/label2id).
LABELS = {
    "text-classification": ("NEGATIVE", "POSITIVE"),
    "token-classification": ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"),
}
MASK_TOKENS = {"bert": "[MASK]", "roberta": "<mask>"}
CHAT_FAMILIES = ("llama", "mistral", "qwen2")


def config_json(
    family: Family, variant: dict[str, int], architecture: str, pipeline_tag: str
) -> dict[str, Any]:
    """config.json as the family writes it (insertion-ordered like transformers)."""
    if family.layout == "timm":
        return {
            "architecture": architecture,
            "num_classes": variant["num_classes"],
            "num_features": variant["num_features"],
            "pretrained_cfg": {"input_size": [3, 224, 224], "crop_pct": 0.95},
        }
    config: dict[str, Any] = {"architectures": [architecture], "model_type": family.model_type}
    config.update(variant)
    labels = LABELS.get(pipeline_tag)
    if labels:
        config["id2label"] = {str(i): label for i, label in enumerate(labels)}
        config["label2id"] = {label: i for i, label in enumerate(labels)}
    config["torch_dtype"] = "bfloat16" if family.name in CHAT_FAMILIES else "float32"
    config["transformers_version"] = TRANSFORMERS_VERSION
    return config


def normalized_config(family: Family, config: dict[str, Any] | None) -> dict[str, int]:
    """The config numbers under common names (hidden_size, num_attention_heads, ...)."""
    if not config:
        return {}
    numbers: dict[str, int] = {}
    for key, value in config.items():
        if isinstance(value, int) and not isinstance(value, bool):
            numbers[family.aliases.get(key, key)] = value
    return numbers
