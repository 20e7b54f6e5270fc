import os
import pytest
from test_alerts import test_ctrl_c_while_a_notification_is_sent_gives_it_back_for_the_next_evaluation as t

@pytest.mark.parametrize("i", range(int(os.environ.get("REPEAT", "100"))))
def test_repeat(storage, monkeypatch, i):
    t(storage, monkeypatch)
