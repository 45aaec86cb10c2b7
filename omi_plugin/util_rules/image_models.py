"""The models an omi image carries: the target's own and those of its `bundled_models`, checked to fit one image
(distinct names, every interface the image declares served by each), and laid out together under `models/`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import Targets, WrappedTarget, WrappedTargetRequest

from omi_plugin.target_types import BundledModelsField, ModelYamlSourceField
from omi_plugin.util_rules.model_inputs import ModelInputs, ModelInputsRequest, ModelsDirectory, OmiModelError


@dataclass(frozen=True)
class ImageModelsRequest:
    address: Address


@dataclass(frozen=True)
class ImageModels:
    """The image's own model first (its default `MODEL_NAME`), then the bundled ones in the order the field lists."""

    own: ModelInputs
    bundled: Tuple[ModelInputs, ...] = ()

    @property
    def all(self) -> Tuple[ModelInputs, ...]:
        return (self.own, *self.bundled)

    @property
    def python_addresses(self) -> Addresses:
        """Every model's handler code and requirements, and the runtime: one closure for the runtime layers."""
        return Addresses(sorted({a for model in self.all for a in model.python_addresses}))


def bundle_problem(own: ModelInputs, bundled: Tuple[ModelInputs, ...]) -> str:
    """Why the models cannot share one image ("" when they can)."""
    names = {own.metadata.name: own.address}
    for model in bundled:
        name = model.metadata.name
        if name in names:
            return (f"bundled_models: {model.address} and {names[name]} both name their model {name!r} "
                    f"(/models/{name} can hold one; rename one in its model.yaml)")
        names[name] = model.address
        missing = [i for i in own.metadata.interfaces if i not in model.metadata.interfaces]
        if missing:
            return (f"bundled_models: {model.address} does not serve {', '.join(missing)}, which the image declares "
                    f"for every model it carries (add {'them' if len(missing) > 1 else 'it'} to `interfaces` in "
                    f"{model.metadata.source_file}, or remove {'them' if len(missing) > 1 else 'it'} from "
                    f"{own.metadata.source_file})")
    return ""


@rule(desc="Collect the models of an OMI image")
async def image_models(request: ImageModelsRequest) -> ImageModels:
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="omi_model"))
    field = wrapped.target[BundledModelsField]
    own = await Get(ModelInputs, ModelInputsRequest(request.address))
    if not field.value:
        return ImageModels(own)
    addresses = await Get(Addresses, UnparsedAddressInputs, field.to_unparsed_address_inputs())
    targets = await Get(Targets, Addresses, addresses)
    for target in targets:
        if target.address == request.address:
            raise OmiModelError(f"{request.address}: bundled_models: lists the target itself (its own model is "
                                "always in the image; remove it)")
        if not target.has_field(ModelYamlSourceField):
            raise OmiModelError(f"{request.address}: bundled_models: {target.address} is a `{target.alias}`, not an "
                                "omi_model (list omi_model targets only)")
        if target[BundledModelsField].value:
            raise OmiModelError(f"{request.address}: bundled_models: {target.address} bundles models itself (list "
                                "the models it bundles here instead)")
    bundled = await MultiGet(Get(ModelInputs, ModelInputsRequest(t.address)) for t in targets)
    problem = bundle_problem(own, tuple(bundled))
    if problem:
        raise OmiModelError(f"{request.address}: {problem}")
    return ImageModels(own, tuple(bundled))


@rule(desc="Lay out the model directories of an OMI image")
async def image_models_directory(models: ImageModels) -> ModelsDirectory:
    directories = await MultiGet(Get(ModelsDirectory, ModelInputs, m) for m in models.all)
    return ModelsDirectory(await Get(Digest, MergeDigests(d.digest for d in directories)))


def rules():
    return collect_rules()
