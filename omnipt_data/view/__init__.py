"""``omnipt-data view``: stores, builds and predictions in FiftyOne, to see and check the data.

What is loaded, and how
-----------------------
One FiftyOne dataset per name (default ``omnipt-<folder name>``), persistent, in FiftyOne's own
database (its bundled ``mongod``, or ``FIFTYONE_DATABASE_URI``). Every sample carries ``uid``, the
store's own key (``frame_uid``, ``image_uid``, or ``<record id>/<image position>`` for a build), under a
unique index: loading the same source again updates the samples it already has (their FiftyOne ids and
the tags people added in the App survive) and adds the missing ones, so a load never duplicates.

- **Frames** (detection images, video frames): one image sample per frame. Boxes become ``Detections``
  per source: ``ground_truth`` (full boxes), ``visible`` and ``head`` (where the store has them),
  ``det`` (detector files), ``predictions`` (the first ``model:NAME`` source; others get
  ``predictions_<name>``) and ``review_<user>``. A box's label is ``person`` for the person categories
  and for ignore regions, else its category; the store's category, visibility, ``box_uid`` and the
  ignore flag are attributes, and ignore regions are also tagged ``ignore`` and marked ``iscrowd`` so
  FiftyOne's evaluation lets predictions on them go (as MOTChallenge and CrowdHuman do).
- **Tracks**: a box's track id is FiftyOne's ``Detection.index``. Sequences are JPEG folders, not
  video files, so they load as *image* samples with ``sequence_uid`` and ``frame_number`` (re-encoding
  every sequence to a video only to view it would double the data and blur the pixels the boxes were
  drawn on); the saved view ``sequences`` groups them dynamically by sequence, ordered by frame, which
  the App plays like a video (at the sequence's frame rate). Referring sentences are sample fields
  (``expressions``: the sequence's sentences) and box attributes (``expressions``: those that refer to
  that box in that frame); semantic MOT track captions are box attributes (``caption``), interactions
  and the clip summary are sample fields.
- **Cross-view stores** (frames with a ``view``): a grouped dataset, one ``fo.Group`` per instant
  (scene and frame index) with one slice per view, so the views of one instant are seen side by side;
  the saved view ``scenes`` groups instants by scene, in frame order.
- **Identities** (ReID and person-text crops): one sample per crop with ``person`` (a classification by
  person uid), camera, captions and attributes.
- **Builds** (a folder with ``manifest.json`` and ``native/<task>/*.jsonl``): one sample per image of
  every record, with the prompt and the answer as text (``prompt``, ``answer``) and the image's label in
  the prompt; the answer's boxes are parsed back (:func:`omnipt_data.answers.parse_answer`), scaled from
  the model's image size back to the original image and drawn as ``answer_boxes``; boxes the prompt
  gives (previous frames, a target person) are ``prompt_boxes``. The saved view ``records`` groups a
  record's images in order.
- **Predictions beside ground truth**: whenever a dataset has ``ground_truth`` and prediction fields
  (``det``, ``predictions*``), FiftyOne's ``evaluate_detections`` runs (COCO-style matching at IoU 0.5,
  one class) with eval key ``eval`` for ``predictions`` and ``eval_<field>`` for the others. Tracker
  results converted with ``mot-results`` (same ``--dataset``/``--split`` as the ground truth) have no
  images: load them under the ground truth's ``--name`` and they land on its frames.
"""
