"""The RunPod Serverless worker: the same image as a pod, taking jobs instead of people.

    worker.py       start-up (provision, ComfyUI, warm-up) and runpod-python's job loop
    handler.py      one job: input → models → images → prompt → outputs → clean-up
    job_input.py    the job's `input` (worker-comfyui's shape, and Ignition's additions)
    input_images.py input images: base64, data URI or a public URL, with a size limit
    ui_to_api.py    a UI-format workflow converted to the API format with /object_info
    comfy_api.py    ComfyUI's HTTP API (prompt, history, view, upload, interrupt)
    execution.py    following one prompt on ComfyUI's websocket: progress, errors, the end
    outputs.py      what the prompt produced → `images` and every other file, base64 or S3
    uploads.py      S3 uploads of outputs (BUCKET_*)
    model_cache.py  models a job asks for, kept on the worker with LRU eviction

Nothing here imports runpod except worker.py, and that only when the worker starts.
"""
