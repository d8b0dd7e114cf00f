"""tflite-forge: TensorFlow Lite shared libraries for real devices."""

__version__ = "0.1.0"
