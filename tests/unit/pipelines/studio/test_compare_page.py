"""Compare encoders page: every pair of the uploaded clips through every chosen encoder, one table
row each with the verdict, the calibrated probability, the score and the time."""

from studio_testing import assert_no_failure, page_app, upload


def test_each_encoder_scores_each_pair():
    app = page_app("compare_page")
    app.file_uploader(key="compare_clips").set_value([upload("a1.wav", "A"), upload("a2.wav", "A"), upload("c1.wav", "C")])
    app.run().multiselect(key="compare_encoders").set_value(["lstm", "conv-transformer"])
    app.run().button(key="compare_go").click().run()
    assert_no_failure(app)
    table = app.dataframe[0].value
    assert len(table) == 2 * 3 and set(table["encoder"]) == {"lstm", "conv-transformer"}
    assert table["probability"].between(0, 1).all() and (table["seconds"] > 0).all()
    for encoder, rows in table.groupby("encoder"):
        scores = dict(zip(rows["first"] + "-" + rows["second"], rows["score"]))
        assert scores["a1.wav-a2.wav"] > max(scores["a1.wav-c1.wav"], scores["a2.wav-c1.wav"]), encoder
        assert rows.loc[rows["second"] == "a2.wav", "verdict"].item() == "same", encoder
