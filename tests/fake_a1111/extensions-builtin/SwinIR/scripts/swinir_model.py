"""Stand-in for the WebUI's built-in SwinIR extension: its file and class names are the ones ours must not reuse."""

from modules.upscaler import Upscaler, UpscalerData


class UpscalerSwinIR(Upscaler):
    def __init__(self, dirname):
        self.name = "SwinIR"
        self.model_url = "https://example.invalid/SwinIR-L_x4_GAN.pth"
        self.model_name = "SwinIR 4x"
        self.user_path = dirname
        super().__init__()
        self.scalers = [UpscalerData(self.model_name, path, self) for path in self.find_models([".pt", ".pth"])]
