#version 330 core
// The surface pass keeps, per pixel, the face drawn there, plus one (0 is the background).

flat in int face;

out float surface;

void main()
{
    surface = float(face + 1);
}
