"""Supervised models judged out of time: segment assignment of new customers (`assignment`),
repurchase and spend in a horizon (`repurchase`), and the deployable customer model (`model`).

May import `schema`, `customers`, `data`, `features` and `segmentation`; never `study` or
`reports`. Compute code only: functions return frames, dicts and fitted objects.
"""
