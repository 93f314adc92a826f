"""The one model lifecycle every modelling stage uses: train → register → vet → promote →
score → rescore on promotion → monitor. A stage declares what is specific to it
(`stage.ModelStage`); everything else lives here."""
