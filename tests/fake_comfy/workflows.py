"""Build and validate the shipped ComfyUI workflows (workflows/*.json and their API twins in workflows/api/).

Node definitions come from the pack itself (INPUT_TYPES/RETURN_TYPES, loaded through the fake ComfyUI) plus
`BUILTIN_NODES`, a transcription of the ComfyUI 0.3.64 built-in nodes the workflows use (nodes.py,
comfy_extras/nodes_upscale_model.py, nodes_mask.py, nodes_preview_any.py), reduced to inputs and outputs. Combos whose
options depend on the user's files are described by what a fresh install has: `example.png` in input/, no SD
checkpoint (a workflow that needs one must say where to download it in `properties.models`).

Regenerate the files after changing a node or a workflow below:
    PYTHONPATH=tests python -m fake_comfy.workflows
"""

from __future__ import annotations

import inspect
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKFLOW_DIR = Path(__file__).resolve().parents[2] / "workflows"
API_DIR = WORKFLOW_DIR / "api"
PACK_ID = "swin2sr-upscaler"  # [project].name in pyproject.toml: the Comfy Registry id (cnr_id)
PACK_VERSION = "0.1.0"
COMFY_VERSION = "0.3.64"
VIRTUAL_NODES = {"Note", "MarkdownNote"}  # frontend-only nodes, absent from API prompts
SOCKET_WILDCARD = "*"

MAX_RESOLUTION = 16384
SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2m", "dpmpp_sde", "ddim"]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"]
SD15_CHECKPOINT = {
    "name": "v1-5-pruned-emaonly-fp16.safetensors",
    "url": "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
    "v1-5-pruned-emaonly-fp16.safetensors?download=true",
    "directory": "checkpoints",
}

# The official model the download workflow names (swin2sr.catalog; the GitHub release asset is the first source).
OFFICIAL_MODEL = {
    "name": "Swin2SR_ClassicalSR_X4_64.pth",
    "url": "https://github.com/mv-lab/swin2sr/releases/download/v0.0.1/Swin2SR_ClassicalSR_X4_64.pth",
    "directory": "upscale_models",
}


def _node(required: dict, outputs: tuple = (), optional: dict | None = None) -> dict:
    return {"input": {"required": required, "optional": optional or {}}, "output": outputs}


BUILTIN_NODES: dict[str, dict] = {
    "LoadImage": _node({"image": (["example.png"], {"image_upload": True})}, ("IMAGE", "MASK")),  # shipped in input/
    "SaveImage": _node({"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}),
    "PreviewImage": _node({"images": ("IMAGE",)}),
    "PreviewAny": _node({"source": (SOCKET_WILDCARD, {})}),
    "MaskToImage": _node({"mask": ("MASK",)}, ("IMAGE",)),
    "UpscaleModelLoader": _node({"model_name": ([], {})}, ("UPSCALE_MODEL",)),
    "ImageUpscaleWithModel": _node({"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)}, ("IMAGE",)),
    "CheckpointLoaderSimple": _node({"ckpt_name": ([], {})}, ("MODEL", "CLIP", "VAE")),
    "CLIPTextEncode": _node({"text": ("STRING", {"multiline": True}), "clip": ("CLIP",)}, ("CONDITIONING",)),
    "EmptyLatentImage": _node({
        "width": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}),
        "height": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}),
        "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
    }, ("LATENT",)),
    "KSampler": _node({
        "model": ("MODEL",),
        "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True}),
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1}),
        "sampler_name": (SAMPLERS, {}),
        "scheduler": (SCHEDULERS, {}),
        "positive": ("CONDITIONING",),
        "negative": ("CONDITIONING",),
        "latent_image": ("LATENT",),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
    }, ("LATENT",)),
    "VAEDecode": _node({"samples": ("LATENT",), "vae": ("VAE",)}, ("IMAGE",)),
}
CONTROL_AFTER_GENERATE = ("fixed", "increment", "decrement", "randomize")


def node_definitions(pack) -> dict[str, dict]:
    """Every node a workflow may use: the pack's (from the classes themselves) and the built-ins above."""
    definitions = dict(BUILTIN_NODES)
    for node_id, node_class in pack.NODE_CLASS_MAPPINGS.items():
        spec = node_class.INPUT_TYPES()
        definitions[node_id] = {
            "input": {"required": spec.get("required", {}), "optional": spec.get("optional", {})},
            "output": node_class.RETURN_TYPES,
            "output_names": getattr(node_class, "RETURN_NAMES", node_class.RETURN_TYPES),
            "validated": _validated_inputs(node_class),
        }
    return definitions


def _validated_inputs(node_class) -> dict:
    """Input name -> the node's VALIDATE_INPUTS for each input it names: ComfyUI then skips its own combo check
    for that input and asks the node (execution.py validate_inputs)."""
    validate = getattr(node_class, "VALIDATE_INPUTS", None)
    if validate is None:
        return {}
    return {name: validate for name in inspect.getfullargspec(validate).args if name != "cls"}


# --------------------------------------------------------------------------------------------------------------------
# Input kinds


def _inputs(definition: dict) -> list[tuple[str, tuple, bool]]:
    """(name, spec, required) in declaration order, required first, as the frontend lays them out."""
    inputs = definition["input"]
    return [(name, spec, True) for name, spec in inputs["required"].items()] + [
        (name, spec, False) for name, spec in inputs["optional"].items()
    ]


def _kind(spec: tuple) -> Any:
    return spec[0]


def _options(spec: tuple) -> dict:
    return spec[1] if len(spec) > 1 else {}


def is_widget(spec: tuple) -> bool:
    kind = _kind(spec)
    return isinstance(kind, (list, tuple)) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")


def sockets(definition: dict) -> list[tuple[str, str, bool]]:
    """(name, type, required) of the inputs that take links."""
    return [(name, _kind(spec), required) for name, spec, required in _inputs(definition) if not is_widget(spec)]


def widgets(definition: dict) -> list[tuple[str, tuple]]:
    return [(name, spec) for name, spec, _ in _inputs(definition) if is_widget(spec)]


def ui_widget_values(definition: dict, values: dict) -> list:
    """Positional widgets_values as the frontend saves them, with its extra entries (seed control, upload)."""
    out = []
    for name, spec in widgets(definition):
        out.append(values[name])
        if _options(spec).get("control_after_generate"):
            out.append("fixed")
        if _options(spec).get("image_upload"):
            out.append("image")
    return out


def check_value(spec: tuple, value: Any) -> str | None:
    """Why `value` is not acceptable for widget `name`, or None."""
    kind, options = _kind(spec), _options(spec)
    if isinstance(kind, (list, tuple)):
        if kind:
            return None if value in kind else f"{value!r} is not one of {list(kind)}"
        return None if isinstance(value, str) and value else f"{value!r} is not a file name"  # the user's files
    if kind == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a string"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    if kind == "INT" and (not isinstance(value, int) or isinstance(value, bool)):
        return f"{value!r} is not an integer"
    if kind == "FLOAT" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        return f"{value!r} is not a number"
    low, high = options.get("min", float("-inf")), options.get("max", float("inf"))
    return None if low <= value <= high else f"{value!r} is outside {low}..{high}"


def widget_error(definition: dict, name: str, spec: tuple, value: Any) -> str | None:
    """check_value, or the node's own VALIDATE_INPUTS where it validates this input (as ComfyUI does)."""
    validate = definition.get("validated", {}).get(name)
    if validate is None:
        return check_value(spec, value)
    answer = validate(**{name: value})
    return None if answer is True else f"{value!r} refused by VALIDATE_INPUTS ({answer})"


def types_match(output_type: str, input_type: str) -> bool:
    return SOCKET_WILDCARD in (output_type, input_type) or output_type == input_type


# --------------------------------------------------------------------------------------------------------------------
# Validation


def validate_ui(workflow: dict, definitions: dict) -> list[str]:
    """Problems the frontend or the executor would hit with a UI-format workflow; [] when it is sound."""
    errors = []
    nodes = {node["id"]: node for node in workflow["nodes"]}
    links = {link[0]: link for link in workflow["links"]}
    if workflow["last_node_id"] < max(nodes) or workflow["last_link_id"] < max(links, default=0):
        errors.append("last_node_id/last_link_id below the ids in use")
    for node in workflow["nodes"]:
        if node["type"] in VIRTUAL_NODES:
            continue
        errors += [f"node {node['id']} ({node['type']}): {e}" for e in _ui_node_errors(node, definitions, links)]
    for link_id, source, source_slot, target, target_slot, link_type in workflow["links"]:
        where = f"link {link_id}"
        if source not in nodes or target not in nodes:
            errors.append(f"{where}: unknown node")
            continue
        output = nodes[source]["outputs"][source_slot]
        target_input = nodes[target]["inputs"][target_slot]
        if link_id not in output["links"] or target_input["link"] != link_id:
            errors.append(f"{where}: not recorded on both ends")
        if not types_match(output["type"], link_type) or not types_match(link_type, target_input["type"]):
            errors.append(f"{where}: {output['type']} -> {target_input['type']} via {link_type}")
    return errors


def _ui_node_errors(node: dict, definitions: dict, links: dict) -> list[str]:
    definition = definitions.get(node["type"])
    if definition is None:
        return ["unknown node type"]
    errors = []
    properties = node.get("properties", {})
    expected_cnr = "comfy-core" if node["type"] in BUILTIN_NODES else PACK_ID
    if properties.get("cnr_id") != expected_cnr:
        errors.append(f"properties.cnr_id is {properties.get('cnr_id')!r}, expected {expected_cnr!r}")
    declared = {name: (kind, required) for name, kind, required in sockets(definition)}
    for entry in node.get("inputs", []):
        if entry["name"] not in declared:
            errors.append(f"input {entry['name']!r} is not declared")
        elif not types_match(entry["type"], declared[entry["name"]][0]):
            errors.append(f"input {entry['name']!r} has type {entry['type']}, declared {declared[entry['name']][0]}")
    connected = {entry["name"] for entry in node.get("inputs", []) if entry.get("link") in links}
    errors += [f"required input {name!r} is not connected"
               for name, (_, required) in declared.items() if required and name not in connected]
    for slot, output in enumerate(node.get("outputs", [])):
        if slot >= len(definition["output"]) or output["type"] != definition["output"][slot]:
            errors.append(f"output {slot} ({output['type']}) does not match the node's outputs")
    errors += _ui_widget_errors(node, definition)
    return errors


def _ui_widget_errors(node: dict, definition: dict) -> list[str]:
    values = list(node.get("widgets_values", []))
    errors = []
    for name, spec in widgets(definition):
        if not values:
            return errors + [f"widget {name!r} has no value"]
        error = widget_error(definition, name, spec, values.pop(0))
        if error:
            errors.append(f"widget {name!r}: {error}")
        if _options(spec).get("control_after_generate") and values.pop(0) not in CONTROL_AFTER_GENERATE:
            errors.append(f"widget {name!r}: bad control_after_generate value")
        if _options(spec).get("image_upload") and values.pop(0) != "image":
            errors.append(f"widget {name!r}: missing upload entry")
    if values:
        errors.append(f"{len(values)} widget values too many")
    return errors


def validate_api(prompt: dict, definitions: dict) -> list[str]:
    """Problems POST /prompt would report for an API-format prompt; [] when it is sound."""
    errors = []
    for node_id, node in prompt.items():
        definition = definitions.get(node["class_type"])
        if definition is None:
            errors.append(f"node {node_id}: unknown class_type {node['class_type']!r}")
            continue
        errors += [f"node {node_id} ({node['class_type']}): {e}" for e in _api_node_errors(node, definition, prompt,
                                                                                          definitions)]
    return errors


def _api_node_errors(node: dict, definition: dict, prompt: dict, definitions: dict) -> list[str]:
    given = node["inputs"]
    declared = {name for name, _, _ in _inputs(definition)}
    errors = [f"input {name!r} is not declared" for name in given if name not in declared]
    for name, spec, required in _inputs(definition):
        if name not in given:
            if required:
                errors.append(f"required input {name!r} missing")
            continue
        value = given[name]
        if is_widget(spec):
            error = widget_error(definition, name, spec, value)
        else:
            error = _api_link_error(value, _kind(spec), prompt, definitions)
        if error:
            errors.append(f"input {name!r}: {error}")
    return errors


def _api_link_error(value: Any, input_type: str, prompt: dict, definitions: dict) -> str | None:
    if not (isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt):
        return f"{value!r} is not a link to a node of this prompt"
    source = prompt[str(value[0])]
    outputs = definitions[source["class_type"]]["output"]
    if value[1] >= len(outputs) or not types_match(outputs[value[1]], input_type):
        return f"links {source['class_type']} output {value[1]} to a {input_type} input"
    return None


def twin_differences(workflow: dict, prompt: dict, definitions: dict) -> list[str]:
    """Where an API prompt does not say the same as its UI workflow (nodes, widget values, links)."""
    expected = to_api(workflow, definitions)
    if expected == prompt:
        return []
    return [f"node {node_id}: UI gives {expected.get(node_id)}, API file has {prompt.get(node_id)}"
            for node_id in sorted(set(expected) | set(prompt)) if expected.get(node_id) != prompt.get(node_id)]


def to_api(workflow: dict, definitions: dict) -> dict:
    """The API prompt the frontend would queue for a UI workflow."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in VIRTUAL_NODES:
            continue
        definition = definitions[node["type"]]
        inputs = {}
        values = iter(node.get("widgets_values", []))
        for name, spec in widgets(definition):
            inputs[name] = next(values)
            if _options(spec).get("control_after_generate") or _options(spec).get("image_upload"):
                next(values)
        for entry in node.get("inputs", []):
            link = links.get(entry.get("link"))
            if link is not None:
                inputs[entry["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": node["type"],
                                   "_meta": {"title": node.get("title", node["type"])}}
    return prompt


# --------------------------------------------------------------------------------------------------------------------
# The shipped workflows


@dataclass
class Node:
    id: int
    type: str
    widgets: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)  # input name -> (source node id, output slot)
    title: str | None = None
    models: list = field(default_factory=list)  # properties.models: downloads the frontend offers


def _loader(node_id: int, model: str = "builtin-x4", title: str | None = None) -> Node:
    return Node(node_id, "Swin2SR_ModelLoader", {"model_name": model, "precision": "auto"}, title=title)


TARGET_DEFAULTS = {"target": "model scale", "factor": 2.0, "width": 0, "height": 0, "sharpen": 0.0}

WORKFLOWS: dict[str, tuple[str, list[Node]]] = {
    "swin2sr_model_loader": ("Swin2SR Model Loader feeding ComfyUI's built-in Upscale Image (using Model)", [
        Node(1, "LoadImage", {"image": "example.png"}),
        _loader(2),
        Node(3, "ImageUpscaleWithModel", links={"upscale_model": (2, 0), "image": (1, 0)}),
        Node(4, "SaveImage", {"filename_prefix": "Swin2SR/builtin_node"}, {"images": (3, 0)}),
    ]),
    "swin2sr_upscale": ("Swin2SR Upscale (Smart-Safe single pass) with the embedded x4 model", [
        Node(1, "LoadImage", {"image": "example.png"}),
        _loader(2),
        Node(3, "Swin2SR_Upscale", {**TARGET_DEFAULTS, "sharpen": 0.1, "max_input_size": 1024},
             {"upscale_model": (2, 0), "image": (1, 0)}),
        Node(4, "SaveImage", {"filename_prefix": "Swin2SR/upscale"}, {"images": (3, 0)}),
    ]),
    "swin2sr_tiled_upscale": ("Swin2SR Tiled Upscale, auto tile size, plan shown in Preview Any", [
        Node(1, "LoadImage", {"image": "example.png"}),
        _loader(2),
        Node(3, "Swin2SR_TiledUpscale", {"tile_size": 0, "overlap": 16, **TARGET_DEFAULTS, "target": "factor"},
             {"upscale_model": (2, 0), "image": (1, 0)}),
        Node(4, "SaveImage", {"filename_prefix": "Swin2SR/tiled"}, {"images": (3, 0)}),
        Node(5, "PreviewAny", links={"source": (3, 1)}, title="Plan"),
    ]),
    "swin2sr_face_refine": ("Swin2SR Face Region Refine: upscale x4, re-render faces, preview the face mask", [
        Node(1, "LoadImage", {"image": "example.png"}),
        _loader(2),
        Node(3, "Swin2SR_FaceRefine", {"detector": "auto", "threshold": 0.5, "max_faces": 0, "face_size": 1024,
                                       "feather": 0.3, "color_match": True},
             {"upscale_model": (2, 0), "image": (1, 0)}),
        Node(4, "SaveImage", {"filename_prefix": "Swin2SR/faces"}, {"images": (3, 0)}),
        Node(5, "MaskToImage", links={"mask": (3, 1)}),
        Node(6, "PreviewImage", links={"images": (5, 0)}, title="Face mask"),
    ]),
    "swin2sr_two_stage": ("Two-Stage x4: stage 1 cleans up (swap in Real-ESRGAN x2 via Load Upscale Model), "
                          "stage 2 Swin2SR x2", [
        Node(1, "LoadImage", {"image": "example.png"}),
        _loader(2, "builtin-x2", title="Stage 1 (or Load Upscale Model: RealESRGAN_x2plus.pth)"),
        _loader(3, "builtin-x2", title="Stage 2: Swin2SR x2"),
        Node(4, "Swin2SR_TwoStage", {"scale": 4, "regions": "everywhere", "detector": "auto"},
             {"stage1_model": (2, 0), "stage2_model": (3, 0), "image": (1, 0)}),
        Node(5, "SaveImage", {"filename_prefix": "Swin2SR/two_stage"}, {"images": (4, 0)}),
    ]),
    "swin2sr_official_model": ("Official Swin2SR ClassicalSR x4, downloaded into models/upscale_models on first "
                               "run (or from the Missing Models dialog's link)", [
        Node(1, "LoadImage", {"image": "example.png"}),
        Node(2, "Swin2SR_ModelLoader", {"model_name": OFFICIAL_MODEL["name"], "precision": "auto"},
             models=[OFFICIAL_MODEL]),
        Node(3, "Swin2SR_Upscale", {**TARGET_DEFAULTS, "max_input_size": 1024},
             {"upscale_model": (2, 0), "image": (1, 0)}),
        Node(4, "SaveImage", {"filename_prefix": "Swin2SR/official_x4"}, {"images": (3, 0)}),
    ]),
    "sd_txt2img_swin2sr_x4": ("SD 1.5 txt2img at 512 px, then Swin2SR x4 to 2048 px", [
        Node(1, "CheckpointLoaderSimple", {"ckpt_name": SD15_CHECKPOINT["name"]}, models=[SD15_CHECKPOINT]),
        Node(2, "CLIPTextEncode", {"text": "a lighthouse on a rocky coast at sunset, detailed, photograph"},
             {"clip": (1, 1)}, title="Positive"),
        Node(3, "CLIPTextEncode", {"text": "blurry, low quality, watermark"}, {"clip": (1, 1)}, title="Negative"),
        Node(4, "EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}),
        Node(5, "KSampler", {"seed": 42, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
                             "denoise": 1.0},
             {"model": (1, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)}),
        Node(6, "VAEDecode", links={"samples": (5, 0), "vae": (1, 2)}),
        _loader(7),
        Node(8, "Swin2SR_Upscale", {**TARGET_DEFAULTS, "max_input_size": 1024},
             {"upscale_model": (7, 0), "image": (6, 0)}),
        Node(9, "SaveImage", {"filename_prefix": "Swin2SR/txt2img_x4"}, {"images": (8, 0)}),
    ]),
}


def build_ui(title: str, nodes: list[Node], definitions: dict) -> dict:
    """A UI-format workflow (frontend schema 0.4) laid out left to right in link order."""
    links, outputs = [], {}
    for target in nodes:
        for slot_name, (source, source_slot) in target.links.items():
            link_type = definitions[_by_id(nodes, source).type]["output"][source_slot]
            links.append([len(links) + 1, source, source_slot, target.id, _socket_index(target, slot_name,
                                                                                        definitions), link_type])
            outputs.setdefault((source, source_slot), []).append(len(links))
    ui_nodes = [_ui_node(node, order, definitions, links, outputs) for order, node in enumerate(nodes)]
    ui_nodes.append({"id": len(nodes) + 1, "type": "Note", "pos": [0, -160], "size": [520, 100], "flags": {},
                     "order": len(nodes), "mode": 0, "inputs": [], "outputs": [], "properties": {},
                     "widgets_values": [title], "color": "#432", "bgcolor": "#653"})
    return {"id": "", "revision": 0, "last_node_id": len(nodes) + 1,
            "last_link_id": len(links), "nodes": ui_nodes, "links": links, "groups": [],
            "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [40, 200]}}, "version": 0.4}


def _by_id(nodes: list[Node], node_id: int) -> Node:
    return next(node for node in nodes if node.id == node_id)


def _socket_index(node: Node, name: str, definitions: dict) -> int:
    return [socket for socket, _, _ in sockets(definitions[node.type])].index(name)


def _ui_node(node: Node, order: int, definitions: dict, links: list, outputs: dict) -> dict:
    definition = definitions[node.type]
    incoming = {(link[3], link[4]): link[0] for link in links}
    socket_list = sockets(definition)
    names = definition.get("output_names", definition["output"])
    properties = {"Node name for S&R": node.type,
                  "cnr_id": "comfy-core" if node.type in BUILTIN_NODES else PACK_ID,
                  "ver": COMFY_VERSION if node.type in BUILTIN_NODES else PACK_VERSION}
    if node.models:
        properties["models"] = node.models
    ui = {
        "id": node.id, "type": node.type, "pos": [order * 360, 120 * (order % 2)],
        "size": [320, 80 + 26 * len(widgets(definition)) + 22 * len(socket_list)], "flags": {}, "order": order,
        "mode": 0,
        "inputs": [{"name": name, "type": kind, "link": incoming.get((node.id, index))}
                   for index, (name, kind, _) in enumerate(socket_list)],
        "outputs": [{"name": names[slot], "type": kind, "slot_index": slot, "links": outputs.get((node.id, slot), [])}
                    for slot, kind in enumerate(definition["output"])],
        "properties": properties,
        "widgets_values": ui_widget_values(definition, node.widgets),
    }
    if node.title:
        ui["title"] = node.title
    return ui


def write_all(definitions: dict) -> None:
    API_DIR.mkdir(parents=True, exist_ok=True)
    for name, (title, nodes) in WORKFLOWS.items():
        ui = build_ui(title, nodes, definitions)
        ui["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PACK_ID}/workflows/{name}"))
        (WORKFLOW_DIR / f"{name}.json").write_text(json.dumps(ui, indent=2) + "\n")
        (API_DIR / f"{name}.json").write_text(json.dumps(to_api(ui, definitions), indent=2) + "\n")


if __name__ == "__main__":
    import tempfile

    from fake_comfy import comfy_environment

    with tempfile.TemporaryDirectory() as base, comfy_environment(Path(base)) as env:
        write_all(node_definitions(env.pack))
