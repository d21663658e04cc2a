"""The web console: the playground (`botkit playground`), the outcomes pages, the console on `botkit serve`.

Everything it serves ships in this package (`static/`); nothing is fetched at run time.
"""
