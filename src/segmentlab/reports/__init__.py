"""What people read: matplotlib plots logged with a run (`plots`), the self-contained HTML kit
and the study report (`html`, `study`), and the exploratory data report (`eda`).

Reads results, never computes them: may import `schema`, `customers` and the vocabulary; never
`study` or the model code.
"""
