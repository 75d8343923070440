"""A local web page over a generator, and the pieces `kgan-generate` shares with it.

`kgan-demo EXPORT_DIR/<model>` serves it (see `kgan.cli.demo`). The web app
(`kgan.demo.app`, Starlette + uvicorn) needs the demo extra, `pip install
"kgan[demo]"`; the backends (`kgan.demo.backends`), request parsing (`kgan.demo.params`)
and media encoding (`kgan.demo.media`) need only NumPy and Pillow (imageio for
animations) and load TensorFlow when a model is opened.
"""
