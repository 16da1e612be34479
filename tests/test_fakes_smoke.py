import asyncio

from conftest import Fakes
from fakes.content import model_bytes
from ignition._http import HttpClient


def test_fakes_answer(fakes: Fakes) -> None:
    fakes.civitai.add(1)
    fakes.hf.add("o/r", {"x.safetensors": model_bytes("x")})

    async def go() -> tuple[int, int]:
        async with HttpClient() as client:
            async with client.get(f"{fakes.civitai.url}/api/download/models/1") as a:
                body_a = await a.read()
            async with client.get(f"{fakes.hf.url}/o/r/resolve/main/x.safetensors") as b:
                body_b = await b.read()
        return len(body_a), len(body_b)

    sizes = asyncio.run(go())
    assert sizes[1] == len(model_bytes("x"))
    assert fakes.storage.counters.requests
