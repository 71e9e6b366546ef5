"""Inert stand-ins for the Gradio components that settings name (tests only)."""


class _Component:
    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs


class Slider(_Component):
    pass


class Radio(_Component):
    pass


class Dropdown(_Component):
    pass


class Number(_Component):
    pass


class Checkbox(_Component):
    pass
