"""The codebook a trained model holds, found in its state dict whatever the quantizer."""
import torch

from pipeline.models.codebook import codebook_from_state_dict


def test_codebook_from_state_dict_finds_svq_and_lucidrains_codebooks():
    svq = {"enc.0.weight": torch.zeros(4, 4), "quantizer.svq.linear2.weight": torch.zeros(10, 128),
           "quantizer.svq.codebook": torch.ones(10, 8)}
    assert codebook_from_state_dict(svq).shape == (10, 8)
    vq = {"quantizer.vq._codebook.initted": torch.tensor(True),
          "quantizer.vq._codebook.cluster_size": torch.zeros(1, 512),
          "quantizer.vq._codebook.embed_avg": torch.zeros(1, 512, 8),
          "quantizer.vq._codebook.embed": torch.ones(1, 512, 8)}
    cb = codebook_from_state_dict(vq)
    assert cb.shape == (512, 8) and cb.min() == 1.0  # embed, not embed_avg
    assert codebook_from_state_dict({"quantizer.vq.layers.0.mask": torch.ones(8)}) is None
