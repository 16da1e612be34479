from ignition.catalog import load_catalog

REQUIRED = {
    "flux1-dev",
    "flux1-schnell",
    "ae",
    "clip_l",
    "t5xxl_fp16",
    "t5xxl_fp8_e4m3fn",
    "sdxl-base",
    "sdxl-refiner",
    "sd15",
    "sd3.5-large",
    "umt5_xxl_fp8_e4m3fn_scaled",
    "wan_2.1_vae",
    "llama_3.1_8b_instruct_fp8_scaled",
    "qwen_2.5_vl_7b_fp8_scaled",
    "qwen_image_vae",
}


def test_catalog_has_the_promised_names() -> None:
    assert set(load_catalog()) >= REQUIRED


def test_catalog_entries_are_complete_and_weights() -> None:
    for name, entry in load_catalog().items():
        assert name == entry.name.lower()
        assert entry.repo.count("/") == 1, name
        assert entry.path.endswith(".safetensors"), name
        assert entry.description and "\n" not in entry.description, name


def test_flux1_schnell_is_the_diffusion_model_not_the_vae() -> None:
    entry = load_catalog()["flux1-schnell"]
    assert entry.path == "flux1-schnell.safetensors"
    assert entry.folder == "diffusion_models"
