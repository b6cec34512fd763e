// Which tasks may share a perception_decoder.onnx run: the graph takes one `is_sentence` per run and text
// embeddings of one phrase count (model/BUNDLE.md). Apart from onnxruntime-node, so that the host side can group.
export function perceptionGroup(isSentence: boolean, numPhrases: number): string {
  return `${isSentence ? 'sentence' : 'words'}/${numPhrases}`;
}
